import Hummingbird

/// OpenAI-shaped error bodies: `{"error":{"message","type","param":null,"code"}}`.
enum OpenAIErrorBody {
    /// The error object's JSON (the value of `"error"` wrapped in its envelope).
    static func json(message: String, type: String, code: String?) -> String {
        var json = #"{"error":{"message":"#
        JSONText.appendString(message, to: &json)
        json += #","type":"#
        JSONText.appendString(type, to: &json)
        json += #","param":null,"code":"#
        if let code {
            JSONText.appendString(code, to: &json)
        } else {
            json += "null"
        }
        return json + "}}"
    }

    /// The `type` and `code` OpenAI uses for an HTTP status.
    static func kind(forStatus status: Int) -> (type: String, code: String?) {
        switch status {
        case 401: ("invalid_request_error", "invalid_api_key")
        case 403: ("invalid_request_error", "permission_denied")
        case 404: ("invalid_request_error", "model_not_found")
        case 408: ("timeout_error", "timeout")
        case 429: ("requests", "rate_limit_exceeded")
        case 503: ("server_error", "service_unavailable")
        case 500...599: ("server_error", nil)
        default: ("invalid_request_error", nil)
        }
    }

    /// A complete error response for `status`.
    static func response(status: Int, message: String, retryAfter: Int? = nil) -> Response {
        let kind = self.kind(forStatus: status)
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter {
            headers[.retryAfter] = String(retryAfter)
        }
        return Response(
            status: HTTPResponse.Status(code: status, reasonPhrase: self.reasonPhrase(status)),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: self.json(message: message, type: kind.type, code: kind.code)))
        )
    }

    private static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: status < 400 ? "OK" : "Error"
        }
    }
}
