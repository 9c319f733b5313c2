//! A set of lexicon documents with references resolved between them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::schema::{Def, LexiconDoc};
use crate::syntax::Nsid;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("lexicon document is malformed: {0}")]
    Malformed(String),
    #[error("lexicon id {0:?} is not a valid NSID")]
    InvalidId(String),
    #[error("{nsid}#{name}: a {kind} definition may only be named main")]
    PrimaryNotMain { nsid: String, name: String, kind: &'static str },
    #[error("lexicon {0} is defined twice")]
    Duplicate(String),
    #[error("reference {0:?} does not name a known definition")]
    UnresolvedRef(String),
}

/// A resolved reference: the document, the definition's name and the definition.
#[derive(Clone, Copy, Debug)]
pub struct DefRef<'a> {
    pub nsid: &'a str,
    pub name: &'a str,
    pub def: &'a Def,
}

impl DefRef<'_> {
    /// The canonical `$type` form: `nsid` for `main`, `nsid#name` otherwise.
    pub fn type_name(&self) -> String {
        type_name(self.nsid, self.name)
    }
}

/// The canonical `$type` string for a definition.
pub fn type_name(nsid: &str, name: &str) -> String {
    if name == "main" {
        nsid.to_owned()
    } else {
        format!("{nsid}#{name}")
    }
}

/// Lexicon documents by NSID: added parsed, or embedded as JSON and parsed on first use.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    docs: BTreeMap<String, LexiconDoc>,
    embedded: BTreeMap<&'static str, Embedded>,
}

/// An embedded document: its JSON, and the document once something asked for it. Parsing all
/// of the server's 391 lexicons up front held 5.5 MiB for the process's life, of which a
/// running server reads a few dozen.
#[derive(Clone, Debug)]
struct Embedded {
    source: &'static str,
    doc: OnceLock<LexiconDoc>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A catalog of documents compiled into the program, as `(nsid, JSON)`, each parsed when it
    /// is first used. They were checked when the program was generated from them (and the
    /// generated crate's tests parse every one), so one that does not parse, or whose id is not
    /// its NSID, means the build itself is broken: that panics.
    pub fn embedded(sources: &[(&'static str, &'static str)]) -> Self {
        let embedded = sources.iter().map(|&(nsid, source)| (nsid, Embedded { source, doc: OnceLock::new() }));
        Catalog { docs: BTreeMap::new(), embedded: embedded.collect() }
    }

    /// Parses one lexicon document from JSON, checking the rules serde alone cannot express.
    pub fn parse_doc(json: &str) -> Result<LexiconDoc, CatalogError> {
        let doc: LexiconDoc = serde_json::from_str(json).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        check_doc(&doc)?;
        Ok(doc)
    }

    /// Checks a document parsed from a JSON value (as the interop vectors carry them).
    pub fn parse_value(value: serde_json::Value) -> Result<LexiconDoc, CatalogError> {
        let doc: LexiconDoc = serde_json::from_value(value).map_err(|e| CatalogError::Malformed(e.to_string()))?;
        check_doc(&doc)?;
        Ok(doc)
    }

    pub fn add(&mut self, doc: LexiconDoc) -> Result<(), CatalogError> {
        check_doc(&doc)?;
        if self.docs.contains_key(&doc.id) || self.embedded.contains_key(doc.id.as_str()) {
            return Err(CatalogError::Duplicate(doc.id));
        }
        self.docs.insert(doc.id.clone(), doc);
        Ok(())
    }

    pub fn get(&self, nsid: &str) -> Option<&LexiconDoc> {
        match self.docs.get(nsid) {
            Some(doc) => Some(doc),
            None => self.embedded.get_key_value(nsid).map(|(nsid, embedded)| embedded.doc(nsid)),
        }
    }

    /// Every document, the embedded ones parsed now if they were not yet.
    pub fn docs(&self) -> impl Iterator<Item = &LexiconDoc> {
        self.docs.values().chain(self.embedded.iter().map(|(nsid, embedded)| embedded.doc(nsid)))
    }

    /// The `main` definition of a document.
    pub fn main(&self, nsid: &str) -> Option<&Def> {
        self.get(nsid)?.defs.get("main")
    }

    /// Resolves a reference written inside document `context`: `#name`, `nsid#name` or `nsid`.
    pub fn resolve<'a>(&'a self, reference: &str, context: &str) -> Result<DefRef<'a>, CatalogError> {
        let (nsid, name) = split_ref(reference, context);
        let doc = self.get(nsid).ok_or_else(|| CatalogError::UnresolvedRef(reference.to_owned()))?;
        let (name, def) =
            doc.defs.get_key_value(name).ok_or_else(|| CatalogError::UnresolvedRef(reference.to_owned()))?;
        Ok(DefRef { nsid: &doc.id, name, def })
    }

    /// Checks that every reference in every document resolves.
    pub fn check_refs(&self) -> Result<(), CatalogError> {
        for doc in self.docs() {
            let mut refs = Vec::new();
            for def in doc.defs.values() {
                collect_def_refs(def, &mut refs);
            }
            for reference in refs {
                self.resolve(&reference, &doc.id)?;
            }
        }
        Ok(())
    }
}

impl Embedded {
    fn doc(&self, nsid: &str) -> &LexiconDoc {
        self.doc.get_or_init(|| match Catalog::parse_doc(self.source) {
            Ok(doc) if doc.id == nsid => doc,
            Ok(doc) => panic!("embedded lexicon {nsid} holds the document {}", doc.id),
            Err(e) => panic!("embedded lexicon {nsid} does not parse: {e}"),
        })
    }
}

/// Splits a reference into (nsid, definition name), relative to the document it appears in.
pub fn split_ref<'a>(reference: &'a str, context: &'a str) -> (&'a str, &'a str) {
    match reference.split_once('#') {
        Some(("", name)) => (context, name),
        Some((nsid, name)) => (nsid, name),
        None => (reference, "main"),
    }
}

fn check_doc(doc: &LexiconDoc) -> Result<(), CatalogError> {
    if doc.id.parse::<Nsid>().is_err() {
        return Err(CatalogError::InvalidId(doc.id.clone()));
    }
    for (name, def) in &doc.defs {
        if def.is_primary() && name != "main" {
            return Err(CatalogError::PrimaryNotMain { nsid: doc.id.clone(), name: name.clone(), kind: def.kind() });
        }
    }
    Ok(())
}

fn collect_def_refs(def: &Def, out: &mut Vec<String>) {
    use super::schema::Field;
    fn field(f: &Field, out: &mut Vec<String>) {
        match f {
            Field::Ref(r) => out.push(r.target.clone()),
            Field::Union(u) => out.extend(u.refs.iter().cloned()),
            Field::Array(a) => field(&a.items, out),
            Field::Object(o) => o.properties.values().for_each(|p| field(p, out)),
            _ => {}
        }
    }
    let body = |b: &Option<super::schema::Body>, out: &mut Vec<String>| {
        if let Some(schema) = b.as_ref().and_then(|b| b.schema.as_ref()) {
            field(schema, out);
        }
    };
    match def {
        Def::Record(r) => r.record.object().properties.values().for_each(|p| field(p, out)),
        Def::Query(q) => body(&q.output, out),
        Def::Procedure(p) => {
            body(&p.input, out);
            body(&p.output, out);
        }
        Def::Subscription(s) => {
            if let Some(m) = &s.message {
                field(&m.schema, out);
            }
        }
        Def::Object(o) => o.properties.values().for_each(|p| field(p, out)),
        Def::Array(a) => field(&a.items, out),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    const A: &str = r#"{"lexicon": 1, "id": "org.example.a", "defs": {"main": {"type": "object", "properties": {}}}}"#;
    const B: &str = r#"{"lexicon": 1, "id": "org.example.b", "defs": {"main": {"type": "object", "properties": {}}}}"#;

    #[test]
    fn an_embedded_document_is_parsed_only_once_something_asks_for_it() {
        let mut catalog = Catalog::embedded(&[("org.example.a", A), ("org.example.b", B)]);
        let parsed = |catalog: &Catalog, nsid: &str| catalog.embedded[nsid].doc.get().is_some();
        assert!(!parsed(&catalog, "org.example.a") && !parsed(&catalog, "org.example.b"));
        assert_eq!(catalog.get("org.example.a").map(|doc| doc.id.as_str()), Some("org.example.a"));
        assert!(parsed(&catalog, "org.example.a") && !parsed(&catalog, "org.example.b"));
        let resolved = catalog.resolve("org.example.b", "org.example.a").unwrap();
        assert_eq!((resolved.nsid, resolved.name), ("org.example.b", "main"));
        assert!(catalog.get("org.example.c").is_none());
        assert!(matches!(catalog.add(Catalog::parse_doc(A).unwrap()), Err(CatalogError::Duplicate(_))));
        assert_eq!(catalog.docs().count(), 2);
    }
}
