//! The user name a client certificate stands for under EXTERNAL: the
//! subject's common name (CN), as RabbitMQ's `rabbitmq_auth_mechanism_ssl`
//! with `ssl_cert_login_from = common_name`; and the subject as
//! `list_connections` shows it (`peer_cert_subject`). A small bounded DER walk over
//! the certificate rustls already verified (no parser crate needed for one
//! field); anything unexpected yields None, never a panic.

/// DER tags used on the way to the subject.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;

/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// id-at-* attribute types with the short names RFC 4514 gives them.
const SHORT_NAMES: &[(&[u8], &str)] = &[
    (COMMON_NAME, "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
];

/// The first common name of the certificate's subject.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    subject_attributes(der)?
        .into_iter()
        .find(|(oid, _)| *oid == COMMON_NAME)
        .and_then(|(_, value)| value)
}

/// The certificate's subject as RabbitMQ shows it (`peer_cert_subject`,
/// `rabbit_ssl`: RFC 4514, the last RDN first, joined by commas), for the
/// attribute types of [`SHORT_NAMES`]; others are left out.
pub fn subject(der: &[u8]) -> Option<String> {
    let parts: Vec<String> = subject_attributes(der)?
        .into_iter()
        .rev()
        .filter_map(|(oid, value)| {
            let (_, short) = SHORT_NAMES.iter().find(|(o, _)| *o == oid)?;
            Some(format!("{short}={}", escape(&value?)))
        })
        .collect();
    Some(parts.join(","))
}

/// RFC 4514's escapes for an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject's attributes in order: (type OID, value as text if it is a
/// string type Warren reads).
fn subject_attributes(der: &[u8]) -> Option<Vec<(&[u8], Option<String>)>> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, rest) = tlv(tbs)?;
    if tag == VERSION {
        tbs = rest;
    }
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, mut subject, _) = tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut out = Vec::new();
    while !subject.is_empty() {
        let (tag, mut rdn, rest) = tlv(subject)?;
        subject = rest;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, rest) = tlv(rdn)?;
            rdn = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag != OID {
                return None;
            }
            let (kind, text, _) = tlv(value)?;
            out.push((oid, decode_string(kind, text)));
        }
    }
    Some(out)
}

/// One DER element: (tag, contents, what follows it). Single-byte tags and
/// definite lengths only (DER has nothing else for these fields).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A directory string as text.
fn decode_string(kind: u8, bytes: &[u8]) -> Option<String> {
    match kind {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => std::str::from_utf8(bytes).ok().map(str::to_string),
        // TeletexString: read as Latin-1, as most software does.
        0x14 => Some(bytes.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16 big-endian.
        0x1e if bytes.len().is_multiple_of(2) => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element with a short or long length.
    fn el(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    fn name(parts: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (oid, kind, value) in parts {
            let attr = [el(OID, oid), el(*kind, value)].concat();
            rdns.extend(el(SET, &el(SEQUENCE, &attr)));
        }
        el(SEQUENCE, &rdns)
    }

    fn cert(subject: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(el(VERSION, &el(0x02, &[2])));
        }
        tbs.extend(el(0x02, &[1, 2, 3]));
        tbs.extend(el(SEQUENCE, &el(OID, &[0x2a, 0x86, 0x48])));
        tbs.extend(name(&[(&[0x55, 0x04, 0x0a], 0x0c, b"Issuer Org")]));
        tbs.extend(el(SEQUENCE, &[0u8; 30]));
        tbs.extend_from_slice(subject);
        tbs.extend(el(SEQUENCE, &[0u8; 200]));
        let body = [el(SEQUENCE, &tbs), el(SEQUENCE, &[1, 2]), el(0x03, &[0; 8])].concat();
        el(SEQUENCE, &body)
    }

    #[test]
    fn finds_the_subject_common_name() {
        let subject = name(&[
            (&[0x55, 0x04, 0x06], 0x13, b"NL"),
            (COMMON_NAME, 0x0c, "client-é".as_bytes()),
            (COMMON_NAME, 0x0c, b"second"),
        ]);
        assert_eq!(
            subject_common_name(&cert(&subject, true)).as_deref(),
            Some("client-é")
        );
        assert_eq!(
            subject_common_name(&cert(&subject, false)).as_deref(),
            Some("client-é")
        );
        let bmp = name(&[(COMMON_NAME, 0x1e, &[0, b'a', 0, b'b'])]);
        assert_eq!(
            subject_common_name(&cert(&bmp, true)).as_deref(),
            Some("ab")
        );
        let no_cn = name(&[(&[0x55, 0x04, 0x0a], 0x0c, b"Org")]);
        assert_eq!(subject_common_name(&cert(&no_cn, true)), None);
    }

    #[test]
    fn garbage_and_truncation_give_none() {
        let subject = name(&[(COMMON_NAME, 0x13, b"guest")]);
        let good = cert(&subject, true);
        assert_eq!(subject_common_name(&good).as_deref(), Some("guest"));
        for cut in 0..good.len() {
            // Any prefix is malformed: the outer length no longer fits.
            assert_eq!(subject_common_name(&good[..cut]), None, "cut at {cut}");
        }
        assert_eq!(subject_common_name(&[0xff; 64]), None);
        assert_eq!(
            subject_common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn renders_the_subject_last_rdn_first_as_rabbitmq() {
        let dn = name(&[
            (&[0x55, 0x04, 0x06], 0x13, b"NL"),
            (&[0x55, 0x04, 0x0a], 0x0c, b"Acme, Inc"),
            (&[0x2a, 0x03], 0x0c, b"unknown type"),
            (COMMON_NAME, 0x0c, b"client"),
        ]);
        assert_eq!(
            subject(&cert(&dn, true)).as_deref(),
            Some("CN=client,O=Acme\\, Inc,C=NL")
        );
        assert_eq!(subject(&[0x30, 0x00]), None);
    }
}
