//! Percent-encoding as JavaScript's `encodeURIComponent` does it (unreserved: `A-Za-z0-9-_.!~*'()`), shared by
//! Klaviyo filters and Algolia secured keys, whose published examples use exactly this encoding; and lowercase
//! hex for digests. Both sit on the resolve hot path, so they write into one buffer.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[usize::from(byte >> 4)] as char);
            out.push(HEX_UPPER[usize::from(byte & 15)] as char);
        }
    }
    out
}

pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(HEX_LOWER[usize::from(byte >> 4)] as char);
        out.push(HEX_LOWER[usize::from(byte & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(
            super::encode_component("a b,c/d:e\"f\\g+h@i=j&k"),
            "a%20b%2Cc%2Fd%3Ae%22f%5Cg%2Bh%40i%3Dj%26k"
        );
        assert_eq!(super::encode_component("ü"), "%C3%BC");
        assert_eq!(super::encode_component("A-z_0.9!~*'()"), "A-z_0.9!~*'()");
        assert_eq!(super::hex_lower(&[0, 15, 16, 255]), "000f10ff");
    }
}
