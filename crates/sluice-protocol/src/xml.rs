//! XML writing shared by the SQS and SNS Query-protocol replies.

use std::fmt::Write as _;

/// Escapes text for XML. `\r` is written as a character reference because XML parsers turn a raw
/// one into `\n`, which would change a message body (and its MD5) on the way to the client.
pub fn esc(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
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
}
