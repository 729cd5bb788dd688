//! XML writing shared by the SQS and SNS Query-protocol replies.

use std::fmt::Write as _;

/// Escapes text for XML. `\r` is written as a character reference because XML parsers turn a raw
/// one into `\n`, which would change a message body (and its MD5) on the way to the client.
///
/// Characters XML 1.0 forbids outright (controls other than tab, line feed and carriage return;
/// U+FFFE, U+FFFF), which no escape can carry, become U+FFFD: they reach here only when an error
/// message quotes the client's input (SQS refuses them in bodies and attributes), and one of them
/// made the whole answer unreadable to every XML parser (found by tests/fuzz_requests.rs).
pub fn esc(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => {
                out.push('\u{FFFD}')
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Writes `<name>text</name>`, the text escaped.
pub fn el(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    esc(out, text);
    let _ = write!(out, "</{name}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_returns_survive_xml_parsers() {
        let mut s = String::new();
        esc(&mut s, "a\r\n<b>");
        assert_eq!(s, "a&#xD;\n&lt;b&gt;");
    }

    /// Minimal case of the fuzz finding: `Action=%06` was quoted raw in InvalidAction's message.
    #[test]
    fn characters_xml_forbids_are_replaced_not_written() {
        let mut s = String::new();
        esc(&mut s, "a\u{6}\u{0}\u{C}\u{FFFE}\t\n]]>\u{FFFD}😀");
        assert_eq!(s, "a\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\t\n]]&gt;\u{FFFD}😀");
    }
}
