/// Invented log probabilities for `logprobs: true` requests, in OpenAI's shape.
///
/// Every answer token T gets the entry
/// `{"token":T,"logprob":-0.5,"bytes":[UTF-8 of T],"top_logprobs":[…]}` whose `top_logprobs`
/// has `top_logprobs` alternatives: T itself with `-0.5`, then `alt1` with `-2.0`, `alt2`
/// with `-3.0`, … (`alt<k>` with `-(k + 1)`), each with its `bytes`.
enum LogprobsJSON {
    /// The most alternatives OpenAI allows (`top_logprobs` is at most 20).
    static let maxTopCount = 20

    /// Appends the entry for `token` with `topCount` alternatives.
    static func appendEntry(token: String, topCount: Int, to json: inout String) {
        json += #"{"token":"#
        JSONText.appendString(token, to: &json)
        json += #","logprob":-0.5,"bytes":"#
        JSONText.appendByteArray(of: token, to: &json)
        json += #","top_logprobs":["#
        for rank in 0..<topCount {
            if rank > 0 { json += "," }
            if rank == 0 {
                json += #"{"token":"#
                JSONText.appendString(token, to: &json)
                json += #","logprob":-0.5,"bytes":"#
                JSONText.appendByteArray(of: token, to: &json)
            } else {
                let alternative = "alt\(rank)"
                json += #"{"token":"\#(alternative)","logprob":-\#(rank + 1).0,"bytes":"#
                JSONText.appendByteArray(of: alternative, to: &json)
            }
            json += "}"
        }
        json += "]}"
    }

    /// Appends `[entry, …]` for every token.
    static func appendEntries(of tokens: AnswerTokens, topCount: Int, to json: inout String) {
        json += "["
        for index in 0..<tokens.count {
            if index > 0 { json += "," }
            self.appendEntry(token: tokens[index], topCount: topCount, to: &json)
        }
        json += "]"
    }

    /// A choice's `logprobs` object for one token: under `content`, or under `refusal` for a
    /// refusal token.
    static func choiceLogprobs(token: String, topCount: Int, refusal: Bool) -> String {
        var json = refusal ? #"{"content":null,"refusal":["# : #"{"content":["#
        self.appendEntry(token: token, topCount: topCount, to: &json)
        return json + (refusal ? "]}" : #"],"refusal":null}"#)
    }
}
