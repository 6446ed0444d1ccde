#!/usr/bin/env python3
"""Generates protocol/src/methods.rs from the AMQP 0-9-1 spec XML (with
RabbitMQ's extensions).

Usage (from the repository root):

    python3 tools/gen_methods.py > protocol/src/methods.rs && rustfmt --edition 2021 protocol/src/methods.rs

The spec path defaults to /work/shared/spec/amqp0-9-1.stripped.extended.xml;
pass another path as the first argument. Only the Python standard library is
used. The output is committed; rerun this whenever the generator changes.
"""

import sys
import xml.etree.ElementTree as ET

SPEC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/spec/amqp0-9-1.stripped.extended.xml"

RUST_TYPE = {
    "bit": "bool",
    "octet": "u8",
    "short": "u16",
    "long": "u32",
    "longlong": "u64",
    "timestamp": "u64",
    "shortstr": "ShortStr",
    "longstr": "LongStr",
    "table": "FieldTable",
}

DECODE = {
    "octet": "wire::get_u8(buf)?",
    "short": "wire::get_u16(buf)?",
    "long": "wire::get_u32(buf)?",
    "longlong": "wire::get_u64(buf)?",
    "timestamp": "wire::get_u64(buf)?",
    "shortstr": "wire::get_shortstr(buf)?",
    "longstr": "wire::get_longstr(buf)?",
    "table": "wire::get_table(buf)?",
}

SKIP_RESERVED = {
    "octet": "wire::skip(buf, 1)?;",
    "short": "wire::skip(buf, 2)?;",
    "long": "wire::skip(buf, 4)?;",
    "longlong": "wire::skip(buf, 8)?;",
    "shortstr": "wire::skip_shortstr(buf)?;",
    "longstr": "wire::skip_longstr(buf)?;",
}

ENCODE = {
    "octet": "buf.put_u8(self.{f});",
    "short": "buf.put_u16(self.{f});",
    "long": "buf.put_u32(self.{f});",
    "longlong": "buf.put_u64(self.{f});",
    "timestamp": "buf.put_u64(self.{f});",
    "shortstr": "wire::put_shortstr(buf, &self.{f});",
    "longstr": "wire::put_longstr(buf, &self.{f});",
    "table": "wire::put_table(buf, &self.{f});",
}

ENCODE_RESERVED = {
    "octet": "buf.put_u8(0);",
    "short": "buf.put_u16(0);",
    "long": "buf.put_u32(0);",
    "longlong": "buf.put_u64(0);",
    "shortstr": "buf.put_u8(0);",
    "longstr": "buf.put_u32(0);",
}


def camel(name):
    return "".join(p.capitalize() for p in name.replace("_", "-").split("-"))


def snake(name):
    s = name.replace("-", "_")
    return "kind" if s == "type" else s


class Field:
    def __init__(self, name, type_, reserved):
        self.name = name
        self.type = type_
        self.reserved = reserved
        self.rust = snake(name)


class Method:
    def __init__(self, cls, el, domains):
        self.cls = cls
        self.name = el.get("name")
        self.index = int(el.get("index"))
        self.content = el.get("content") == "1"
        self.struct = camel(cls.name) + camel(self.name)
        # RabbitMQ's spelling of method names, e.g. 'basic.get_ok'.
        self.full_name = "%s.%s" % (cls.name, self.name.replace("-", "_"))
        self.fields = []
        for f in el.findall("field"):
            t = f.get("type") or domains[f.get("domain")]
            self.fields.append(Field(f.get("name"), t, f.get("reserved") == "1"))

    def groups(self):
        """Fields grouped so that runs of consecutive bits share one octet
        (at most eight to an octet), as the spec packs them."""
        out = []
        for f in self.fields:
            if f.type == "bit" and out and out[-1][0] == "bits" and len(out[-1][1]) < 8:
                out[-1][1].append(f)
            elif f.type == "bit":
                out.append(("bits", [f]))
            else:
                out.append(("one", f))
        return out

    def public_fields(self):
        return [f for f in self.fields if not f.reserved]


class Class:
    def __init__(self, el, domains):
        self.name = el.get("name")
        self.index = int(el.get("index"))
        self.methods = [Method(self, m, domains) for m in el.findall("method")]


def load():
    root = ET.parse(SPEC).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    # Resolve domain chains (a domain whose type is itself a domain).
    for k, v in list(domains.items()):
        while v in domains and domains[v] != v:
            v = domains[v]
        domains[k] = v
    return [Class(c, domains) for c in root.findall("class")]


def emit_struct(m, w):
    fields = m.public_fields()
    w("/// `%s` (class %d, method %d)%s." % (
        m.full_name, m.cls.index, m.index, ", followed by content" if m.content else ""))
    w("#[derive(Clone, Debug, Default, PartialEq)]")
    if not fields:
        w("pub struct %s;" % m.struct)
    else:
        w("pub struct %s {" % m.struct)
        for f in fields:
            w("    pub %s: %s," % (f.rust, RUST_TYPE[f.type]))
        w("}")
    w("")
    w("impl %s {" % m.struct)
    w("    pub const CLASS_ID: u16 = %d;" % m.cls.index)
    w("    pub const METHOD_ID: u16 = %d;" % m.index)
    w("    pub const NAME: &'static str = \"%s\";" % m.full_name)
    w("")
    # decode
    buf_used = bool(m.fields)
    w("    /// Decodes the arguments (after the class and method ids).")
    w("    pub fn decode_args(%s: &mut Bytes) -> Result<Self, DecodeError> {" % ("buf" if buf_used else "_buf"))
    for kind, g in m.groups():
        if kind == "bits":
            named = [f for f in g if not f.reserved]
            if named:
                w("        let bits = wire::get_u8(buf)?;")
                for i, f in enumerate(g):
                    if not f.reserved:
                        w("        let %s = bits & %d != 0;" % (f.rust, 1 << i))
            else:
                w("        wire::skip(buf, 1)?;")
        else:
            f = g
            if f.reserved:
                w("        " + SKIP_RESERVED[f.type])
            else:
                w("        let %s = %s;" % (f.rust, DECODE[f.type]))
    if not fields:
        w("        Ok(%s)" % m.struct)
    else:
        w("        Ok(%s {" % m.struct)
        for f in fields:
            w("            %s," % f.rust)
        w("        })")
    w("    }")
    w("")
    w("    /// Encodes the arguments (after the class and method ids).")
    w("    pub fn encode_args(&self, %s: &mut BytesMut) {" % ("buf" if buf_used else "_buf"))
    for kind, g in m.groups():
        if kind == "bits":
            terms = ["(self.%s as u8) << %d" % (f.rust, i) if i else "self.%s as u8" % f.rust
                     for i, f in enumerate(g) if not f.reserved]
            w("        buf.put_u8(%s);" % (" | ".join(terms) if terms else "0"))
        else:
            f = g
            if f.reserved:
                w("        " + ENCODE_RESERVED[f.type])
            else:
                w("        " + ENCODE[f.type].format(f=f.rust))
    w("    }")
    w("}")
    w("")
    w("impl From<%s> for Method {" % m.struct)
    w("    fn from(m: %s) -> Method {" % m.struct)
    w("        Method::%s(m)" % m.struct)
    w("    }")
    w("}")
    w("")


def main():
    classes = load()
    methods = [m for c in classes for m in c.methods]
    lines = []
    w = lines.append
    w("//! Every AMQP 0-9-1 method (with RabbitMQ's extensions) as a struct, and")
    w("//! `enum Method` with decode/encode of method frame payloads.")
    w("//!")
    w("//! GENERATED by `tools/gen_methods.py` from")
    w("//! `amqp0-9-1.stripped.extended.xml`; do not edit by hand. Regenerate with")
    w("//! `python3 tools/gen_methods.py > protocol/src/methods.rs && rustfmt --edition 2021 protocol/src/methods.rs`.")
    w("//! Generated rather than hand-written because 64 methods of mechanical")
    w("//! (de)serialisation are where typos hide; the spec XML is the single")
    w("//! source of truth for ids, field order and bit packing.")
    w("//!")
    w("//! Conventions: `{Class}{Method}` structs, snake_case fields, the spec's")
    w("//! `type` field is `kind`; `reserved-N` fields are absent from the structs,")
    w("//! written as zero / empty and skipped on decode. Consecutive bits share one")
    w("//! octet, lowest bit first. Method names are spelled as RabbitMQ prints them")
    w("//! (`basic.get_ok`).")
    w("")
    w("use bytes::{BufMut, Bytes, BytesMut};")
    w("")
    w("use crate::types::{FieldTable, LongStr, ShortStr};")
    w("use crate::wire::{self, DecodeError};")
    w("")
    for m in methods:
        emit_struct(m, w)

    w("/// Any AMQP method.")
    w("#[derive(Clone, Debug, PartialEq)]")
    w("pub enum Method {")
    for m in methods:
        w("    %s(%s)," % (m.struct, m.struct))
    w("}")
    w("")
    w("/// The RabbitMQ-style name of a class/method pair, if it is defined.")
    w("pub fn method_name(class_id: u16, method_id: u16) -> Option<&'static str> {")
    w("    Some(match (class_id, method_id) {")
    for m in methods:
        w("        (%d, %d) => %s::NAME," % (m.cls.index, m.index, m.struct))
    w("        _ => return None,")
    w("    })")
    w("}")
    w("")
    w("impl Method {")
    w("    /// Decodes a method frame payload: class id, method id, arguments.")
    w("    /// Bytes left after the last argument are an error.")
    w("    pub fn decode(mut payload: Bytes) -> Result<Method, DecodeError> {")
    w("        let class_id = wire::get_u16(&mut payload)?;")
    w("        let method_id = wire::get_u16(&mut payload)?;")
    w("        let buf = &mut payload;")
    w("        let decoded = match (class_id, method_id) {")
    for m in methods:
        w("            (%d, %d) => %s::decode_args(buf).map(Method::%s)," % (
            m.cls.index, m.index, m.struct, m.struct))
    w("            _ => {")
    w("                return Err(DecodeError::UnknownMethod {")
    w("                    class_id,")
    w("                    method_id,")
    w("                })")
    w("            }")
    w("        };")
    w("        let in_method = |source: DecodeError| DecodeError::InMethod {")
    w("            class_id,")
    w("            method_id,")
    w("            name: method_name(class_id, method_id).unwrap_or(\"unknown\"),")
    w("            source: Box::new(source),")
    w("        };")
    w("        let method = decoded.map_err(in_method)?;")
    w("        if !payload.is_empty() {")
    w("            return Err(in_method(DecodeError::TrailingBytes {")
    w("                count: payload.len(),")
    w("            }));")
    w("        }")
    w("        Ok(method)")
    w("    }")
    w("")
    w("    /// Appends class id, method id and arguments.")
    w("    pub fn encode(&self, buf: &mut BytesMut) {")
    w("        buf.put_u16(self.class_id());")
    w("        buf.put_u16(self.method_id());")
    w("        match self {")
    for m in methods:
        w("            Method::%s(m) => m.encode_args(buf)," % m.struct)
    w("        }")
    w("    }")
    w("")
    for fn, const, ty in (("class_id", "CLASS_ID", "u16"), ("method_id", "METHOD_ID", "u16"),
                          ("name", "NAME", "&'static str")):
        w("    pub fn %s(&self) -> %s {" % (fn, ty))
        w("        match self {")
        for m in methods:
            w("            Method::%s(_) => %s::%s," % (m.struct, m.struct, const))
        w("        }")
        w("    }")
        w("")
    w("    /// Whether a content header (and bodies) follow this method.")
    w("    pub fn carries_content(&self) -> bool {")
    w("        matches!(")
    w("            self,")
    w("            " + " | ".join("Method::%s(_)" % m.struct for m in methods if m.content))
    w("        )")
    w("    }")
    w("}")
    w("")
    w("/// One default-valued instance of every method, for tests.")
    w("#[cfg(test)]")
    w("pub(crate) fn all_default_methods() -> Vec<Method> {")
    w("    vec![")
    for m in methods:
        ctor = "%s::default()" % m.struct if m.public_fields() else m.struct
        w("        Method::%s(%s)," % (m.struct, ctor))
    w("    ]")
    w("}")
    w("")
    w("#[cfg(test)]")
    w("#[path = \"methods_tests.rs\"]")
    w("mod tests;")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
