#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Identifiers with a readable prefix: `req_…`, `conv_…`, `msg_…`, `task_…`.
public enum Identifier {
    /// `prefix` and 24 characters of [0-9A-Za-z] (about 143 bits).
    public static func make(_ prefix: String) -> String {
        prefix + RandomText.make(24)
    }

    /// `prefix`, 9 characters of the millisecond (base 36, [0-9a-z], zero-padded), then 15 random
    /// characters of [0-9A-Za-z] (about 89 bits): ids of stored rows sort by when they were made.
    /// A new row's primary-key entry (and that of every index led by such an id) then lands on the
    /// rightmost page of its B-tree, the same page for the rows of one commit, instead of a random
    /// page each: SQLite writes each changed page to its WAL and PostgreSQL logs a changed page
    /// whole after each checkpoint. Digits and lower-case letters keep the order under any
    /// collation (a locale's collation puts `a` before `B`). Base 36 in 9 characters lasts past
    /// the year 5000.
    public static func ordered(_ prefix: String, milliseconds: Int64 = nowMilliseconds()) -> String {
        var time = UInt64(max(0, milliseconds))
        let stamp = String(unsafeUninitializedCapacity: timeCharacters) { buffer in
            for index in stride(from: timeCharacters - 1, through: 0, by: -1) {
                buffer[index] = base36[Int(time % 36)]
                time /= 36
            }
            return timeCharacters
        }
        return prefix + stamp + RandomText.make(15)
    }

    static let timeCharacters = 9
    static let base36 = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
}

/// Random text from [0-9A-Za-z], from the system's cryptographic generator: the bytes for a whole
/// text in one call (`arc4random_buf`, one `getrandom` on Linux), not a call per character or per
/// 8 bytes.
public enum RandomText {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    public static func make(_ count: Int) -> String {
        String(unsafeUninitializedCapacity: count) { buffer in
            var filled = 0
            // 248 = 4 × 62: a byte ≥ 248 is dropped, which keeps every character equally likely;
            // a quarter more bytes than characters is nearly always enough in one draw.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count + count / 4 + 8) { bytes in
                while filled < count {
                    arc4random_buf(bytes.baseAddress!, bytes.count)
                    for byte in bytes where byte < 248 && filled < count {
                        buffer[filled] = alphabet[Int(byte % 62)]
                        filled += 1
                    }
                }
            }
            return count
        }
    }
}
