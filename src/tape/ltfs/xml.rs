//! A small element tree over quick-xml, for the label and index parsers:
//! both are short documents read whole, and checking element order and
//! required fields is simpler on a tree than on an event stream.
//!
//! Built without recursion and with a depth limit, so a hostile index
//! (deeply nested, huge) gives an error, not a stack overflow.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deeper than any real index (a directory tree 500 levels deep).
const MAX_DEPTH: usize = 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Text directly inside this element (entities resolved).
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Names of the child elements, in document order.
    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Parse a whole document into its root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err("content after the root element".into());
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                stack.push(start_element(&e)?);
            }
            Event::Empty(e) => {
                let el = start_element(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(e) => {
                let el = stack.pop().ok_or("a closing tag without an opening one")?;
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if name != el.name {
                    return Err(format!("<{}> closed by </{name}>", el.name));
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| format!("bad text: {e}"))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                } else if !s.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| format!("bad CDATA: {e}"))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| format!("bad character reference: {e}"))?
                } else {
                    let name = r.decode().map_err(|e| format!("bad reference: {e}"))?;
                    match name.as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        other => return Err(format!("unknown entity &{other};")),
                    }
                };
                if let (Some(c), Some(el)) = (c, stack.last_mut()) {
                    el.text.push(c);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err("a DOCTYPE is not allowed in an LTFS document".into()),
        }
    }
    if !stack.is_empty() {
        return Err(format!("the document ends inside <{}>", stack[stack.len() - 1].name));
    }
    root.ok_or_else(|| "the document has no root element".into())
}

fn start_element(e: &quick_xml::events::BytesStart) -> Result<Element, String> {
    let name = std::str::from_utf8(e.name().as_ref()).map_err(|_| "an element name that is not UTF-8".to_string())?.to_string();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| format!("bad attribute in <{name}>: {err}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
            .map_err(|err| format!("bad attribute value in <{name}>: {err}"))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new() })
}

/// Writes an LTFS XML document: UTF-8 declaration, four-space indent (as
/// the reference writes its labels), text escaped by quick-xml.
pub struct XmlOut {
    writer: quick_xml::Writer<Vec<u8>>,
}

impl Default for XmlOut {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlOut {
    pub fn new() -> Self {
        use quick_xml::events::BytesDecl;
        let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 4);
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).expect("writing to a Vec cannot fail");
        XmlOut { writer }
    }

    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let mut e = quick_xml::events::BytesStart::new(name);
        for (k, v) in attrs {
            e.push_attribute((*k, *v));
        }
        self.event(Event::Start(e));
    }

    pub fn end(&mut self, name: &str) {
        self.event(Event::End(quick_xml::events::BytesEnd::new(name)));
    }

    /// `<name>text</name>`, or `<name/>` for empty text.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    pub fn leaf_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        if text.is_empty() {
            let mut e = quick_xml::events::BytesStart::new(name);
            for (k, v) in attrs {
                e.push_attribute((*k, *v));
            }
            self.event(Event::Empty(e));
            return;
        }
        self.start(name, attrs);
        self.event(Event::Text(quick_xml::events::BytesText::new(text)));
        self.end(name);
    }

    fn event(&mut self, e: Event) {
        self.writer.write_event(e).expect("writing to a Vec cannot fail");
    }

    pub fn finish(self) -> Vec<u8> {
        let mut out = self.writer.into_inner();
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entities_and_nesting() {
        let root = parse(r#"<?xml version="1.0"?><a x="1"><b>R&amp;D &#x41;</b><c/></a>"#).unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attr("x"), Some("1"));
        assert_eq!(root.child("b").unwrap().text, "R&D A");
        assert_eq!(root.child_names(), vec!["b", "c"]);
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(parse("\u{0}\u{1}garbage").is_err());
        assert!(parse("<a><b>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a></b>").is_err());
        let deep = "<d>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
    }
}
