//! The resolved intermediate representation: every lexicon definition turned into the Rust
//! items it becomes, with references resolved to paths and names fixed. Emitters read only this.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aurora_atproto::lexicon::{self as lex, Catalog, Def, Field};

use crate::auth::{AuthKind, AuthTable};
use crate::names;

#[derive(Debug)]
pub struct Ir {
    /// Modules by NSID, in NSID order.
    pub modules: BTreeMap<String, Module>,
    /// Methods that manage the account itself: never proxied, no service tokens for them.
    pub protected: Vec<String>,
    /// Methods that need a full session or a privileged app password.
    pub privileged: Vec<String>,
}

#[derive(Debug)]
pub struct Module {
    pub nsid: String,
    /// Rust module path below the crate root.
    pub path: Vec<String>,
    /// File below `generated/src`.
    pub file: PathBuf,
    /// The lexicon file the module comes from, relative to the repository root.
    pub source: String,
    pub description: Option<String>,
    pub items: Vec<Item>,
    pub method: Option<Method>,
    pub record: Option<Record>,
}

#[derive(Debug)]
pub enum Item {
    Struct(Struct),
    Union(Union),
    StringEnum(StringEnum),
    Token { name: String, value: String, doc: Option<String> },
    Alias { name: String, ty: Ty, doc: Option<String> },
}

#[derive(Debug)]
pub struct Struct {
    pub name: String,
    pub doc: Option<String>,
    pub fields: Vec<FieldIr>,
    /// Query parameters keep no unknown fields; everything else does.
    pub keep_unknown: bool,
    pub query: QueryReader,
}

/// How a method's `Params` struct is read from the query string.
#[derive(Debug)]
pub enum QueryReader {
    /// Not a `Params` struct.
    NotParams,
    /// Only through the lexicon interpreter: some parameter is beyond the direct reader.
    Interpreted,
    /// Read directly, each field checked against its lexicon schema (in field order).
    Direct(Vec<Field>),
}

#[derive(Debug)]
pub struct FieldIr {
    pub json: String,
    pub rust: String,
    pub ty: Ty,
    pub presence: Presence,
    pub doc: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum Presence {
    Required,
    /// Must be present, may be `null`.
    RequiredNullable,
    Optional,
    /// May be absent or `null`, which mean different things (`Some(None)` is `null`).
    OptionalNullable,
    /// May be absent, in which case the lexicon's default applies.
    Defaulted(DefaultValue),
}

#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    Int(i64),
    Bool(bool),
}

#[derive(Debug)]
pub struct Union {
    pub name: String,
    pub doc: Option<String>,
    pub variants: Vec<Variant>,
    pub closed: bool,
}

#[derive(Debug)]
pub struct Variant {
    pub name: String,
    /// The `$type` value that selects this variant.
    pub type_name: String,
    pub ty: Ty,
}

#[derive(Debug)]
pub struct StringEnum {
    pub name: String,
    pub doc: Option<String>,
    /// (variant name, wire value)
    pub values: Vec<(String, String)>,
    /// Closed for `enum`, open (with an `Other` variant) for `knownValues`.
    pub closed: bool,
}

/// The Rust type of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    String,
    /// A validated string newtype from the runtime facade, e.g. `Did`.
    Format(&'static str),
    Bytes,
    CidLink,
    Blob,
    Unknown,
    Vec(Box<Ty>),
    Named {
        path: String,
        boxed: bool,
    },
}

#[derive(Debug)]
pub struct Method {
    pub kind: MethodKind,
    /// Whether a `Params` struct exists (always for queries and subscriptions).
    pub has_params: bool,
    pub input: BodyIr,
    pub output: BodyIr,
    pub errors: Vec<(String, Option<String>)>,
    pub auth: AuthKind,
    /// What an OAuth token must allow (for methods that take a session).
    pub oauth: crate::auth::OAuthRule,
    /// What the lexicon says the method does.
    pub description: Option<String>,
    /// `com.atproto.repo` for `com.atproto.repo.createRecord`.
    pub namespace: String,
    pub fn_name: String,
    /// Whether Aurora serves this method itself (service trait and route) rather than leaving
    /// it to the proxy.
    pub served: bool,
}

impl Method {
    /// Who may call, in words, with what an OAuth token must allow.
    pub fn describe_auth(&self) -> String {
        let who = self.auth.describe();
        if !self.served {
            // Forwarded: the proxy asks an OAuth token for this method at the service it goes to.
            format!("{who}; {}", crate::auth::OAuthRule::Rpc.describe())
        } else if self.auth.takes_session() {
            format!("{who}; {}", self.oauth.describe())
        } else {
            who
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Query,
    Procedure,
    Subscription,
}

impl MethodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Query => "query",
            MethodKind::Procedure => "procedure",
            MethodKind::Subscription => "subscription",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyIr {
    None,
    /// A JSON body of this type.
    Json(Ty),
    /// Bytes with the given encoding (MIME type or pattern).
    Raw(String),
}

#[derive(Debug)]
pub struct Record {
    pub key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IrError {
    #[error("{0}: reference {1} does not resolve")]
    Unresolved(String, String),
    #[error("{0}: two items would be named {1}")]
    NameClash(String, String),
    #[error("{0}#{1}: {2}")]
    Unsupported(String, String, String),
}

/// The Rust name of a definition's main type.
pub fn def_type_name(name: &str, def: &Def) -> String {
    // Names the prelude or the per-method items already use.
    const TAKEN: &[&str] =
        &["Option", "Result", "String", "Vec", "Box", "Some", "None", "Ok", "Err", "Error", "Endpoint"];
    match (name, def) {
        ("main", Def::Record(_)) => "Record".to_owned(),
        ("main", _) => "Main".to_owned(),
        (other, _) => {
            let camel = names::camel(other);
            if TAKEN.contains(&camel.as_str()) {
                format!("{camel}Def")
            } else {
                camel
            }
        }
    }
}

/// The absolute Rust path of a definition's type.
fn def_path(nsid: &str, name: &str, def: &Def) -> String {
    format!("crate::{}::{}", names::module_path(nsid).join("::"), def_type_name(name, def))
}

pub fn build(catalog: &Catalog, auth: &AuthTable, served: &[&str]) -> Result<Ir, IrError> {
    let mut modules = BTreeMap::new();
    for doc in catalog.docs() {
        let reserved = doc.defs.iter().map(|(name, def)| def_type_name(name, def)).collect();
        let excluded = served.iter().any(|entry| entry.strip_prefix('!') == Some(doc.id.as_str()));
        let served = !excluded && served.iter().any(|prefix| !prefix.starts_with('!') && doc.id.starts_with(prefix));
        let mut builder =
            ModuleBuilder { catalog, nsid: &doc.id, items: Vec::new(), names: BTreeSet::new(), reserved, served };
        let mut method = None;
        let mut record = None;
        for (name, def) in &doc.defs {
            builder.def(name, def, auth, &mut method, &mut record)?;
        }
        let module = Module {
            nsid: doc.id.clone(),
            path: names::module_path(&doc.id),
            file: names::module_file(&doc.id),
            source: format!("lexicons/{}.json", doc.id.replace('.', "/")),
            description: doc.description.clone(),
            items: builder.items,
            method,
            record,
        };
        modules.insert(doc.id.clone(), module);
    }
    let mut ir = Ir { modules, protected: auth.protected.clone(), privileged: auth.privileged.clone() };
    box_recursive_fields(&mut ir);
    Ok(ir)
}

struct ModuleBuilder<'a> {
    catalog: &'a Catalog,
    nsid: &'a str,
    items: Vec<Item>,
    names: BTreeSet<String>,
    /// The names of the document's own definitions, which inline types must not take.
    reserved: BTreeSet<String>,
    served: bool,
}

impl ModuleBuilder<'_> {
    /// A name for an inline type: `{Owner}{Prop}`, or with `suffix` if a definition has that name.
    fn inline_name(&self, owner: &str, prop: &str, suffix: &str) -> String {
        let plain = format!("{owner}{}", names::camel(prop));
        if !self.reserved.contains(&plain) && !self.names.contains(&plain) {
            return plain;
        }
        format!("{plain}{suffix}")
    }

    fn claim(&mut self, name: &str) -> Result<(), IrError> {
        if self.names.insert(name.to_owned()) {
            Ok(())
        } else {
            Err(IrError::NameClash(self.nsid.to_owned(), name.to_owned()))
        }
    }

    fn path_of(&self, name: &str) -> String {
        format!("crate::{}::{}", names::module_path(self.nsid).join("::"), name)
    }

    fn def(
        &mut self,
        name: &str,
        def: &Def,
        auth: &AuthTable,
        method: &mut Option<Method>,
        record: &mut Option<Record>,
    ) -> Result<(), IrError> {
        let type_name = def_type_name(name, def);
        let doc = def.description().map(str::to_owned);
        match def {
            Def::Record(r) => {
                *record = Some(Record { key: r.key.clone() });
                self.object(&type_name, r.record.object(), doc)?;
            }
            Def::Object(o) => self.object(&type_name, o, doc)?,
            Def::Token(_) => {
                self.claim(&names::constant(name))?;
                let value = lex::DefRef { nsid: self.nsid, name, def }.type_name();
                self.items.push(Item::Token { name: names::constant(name), value, doc });
            }
            Def::String(s) if !s.known_values.is_empty() || s.enum_.is_some() => {
                self.string_enum(&type_name, s, doc)?;
            }
            Def::Query(q) => {
                self.params(q.parameters.as_ref(), true)?;
                let output = self.body("Output", q.output.as_ref())?;
                let mut m = self.method(MethodKind::Query, true, BodyIr::None, output, &q.errors, auth);
                m.description = q.description.clone();
                *method = Some(m);
            }
            Def::Procedure(p) => {
                let has_params = self.params(p.parameters.as_ref(), false)?;
                let input = self.body("Input", p.input.as_ref())?;
                let output = self.body("Output", p.output.as_ref())?;
                let mut m = self.method(MethodKind::Procedure, has_params, input, output, &p.errors, auth);
                m.description = p.description.clone();
                *method = Some(m);
            }
            Def::Subscription(s) => {
                self.params(s.parameters.as_ref(), true)?;
                if let Some(message) = &s.message {
                    let ty = self.field_ty(&message.schema, "Message", "")?;
                    if !matches!(&ty, Ty::Named { path, .. } if path.ends_with("::Message")) {
                        self.claim("Message")?;
                        self.items.push(Item::Alias { name: "Message".into(), ty, doc: message.description.clone() });
                    }
                }
                let output = BodyIr::Raw("application/vnd.atproto.frames".into());
                let mut m = self.method(MethodKind::Subscription, true, BodyIr::None, output, &s.errors, auth);
                m.description = s.description.clone();
                *method = Some(m);
            }
            Def::PermissionSet(_) => {}
            other => {
                let field = other.as_field().ok_or_else(|| {
                    IrError::Unsupported(self.nsid.into(), name.into(), format!("{} definition", other.kind()))
                })?;
                let ty = self.field_ty(&field, &type_name, "Item")?;
                self.claim(&type_name)?;
                self.items.push(Item::Alias { name: type_name, ty, doc });
            }
        }
        Ok(())
    }

    fn method(
        &self,
        kind: MethodKind,
        has_params: bool,
        input: BodyIr,
        output: BodyIr,
        errors: &[lex::ErrorDef],
        auth: &AuthTable,
    ) -> Method {
        let (namespace, last) = self.nsid.rsplit_once('.').unwrap_or(("", self.nsid));
        Method {
            kind,
            has_params,
            input,
            output,
            errors: errors.iter().map(|e| (e.name.clone(), e.description.clone())).collect(),
            auth: auth.lookup(self.nsid),
            oauth: auth.lookup_oauth(self.nsid),
            description: None,
            namespace: namespace.to_owned(),
            fn_name: names::snake(last),
            served: self.served,
        }
    }

    /// Emits the `Params` struct; returns whether one exists.
    fn params(&mut self, params: Option<&lex::ParamsSchema>, always: bool) -> Result<bool, IrError> {
        if params.is_none() && !always {
            return Ok(false);
        }
        let empty = lex::ParamsSchema { description: None, required: vec![], properties: BTreeMap::new() };
        let params = params.unwrap_or(&empty);
        let object = lex::ObjectSchema {
            description: params.description.clone(),
            required: params.required.clone(),
            nullable: vec![],
            properties: params.properties.clone(),
        };
        self.object_with("Params", &object, params.description.clone(), false)?;
        if let Some(Item::Struct(params)) = self.items.last_mut() {
            params.query = query_reader(params, &object);
        }
        Ok(true)
    }

    fn body(&mut self, name: &str, body: Option<&lex::Body>) -> Result<BodyIr, IrError> {
        let Some(body) = body else { return Ok(BodyIr::None) };
        if !body.is_json() {
            return Ok(BodyIr::Raw(body.encoding.clone()));
        }
        let Some(schema) = &body.schema else { return Ok(BodyIr::Json(Ty::Unknown)) };
        let ty = self.field_ty(schema, name, "")?;
        if !matches!(&ty, Ty::Named { path, .. } if *path == self.path_of(name)) {
            self.claim(name)?;
            self.items.push(Item::Alias { name: name.to_owned(), ty, doc: body.description.clone() });
        }
        Ok(BodyIr::Json(Ty::Named { path: self.path_of(name), boxed: false }))
    }

    fn object(&mut self, name: &str, object: &lex::ObjectSchema, doc: Option<String>) -> Result<(), IrError> {
        self.object_with(name, object, doc, true)
    }

    fn object_with(
        &mut self,
        name: &str,
        object: &lex::ObjectSchema,
        doc: Option<String>,
        keep_unknown: bool,
    ) -> Result<(), IrError> {
        self.claim(name)?;
        let mut fields = Vec::new();
        for (json, field) in &object.properties {
            let ty = self.field_ty(field, name, json)?;
            let required = object.required.contains(json);
            let nullable = object.nullable.contains(json);
            let default = match field {
                Field::Integer(i) => i.default.map(DefaultValue::Int),
                Field::Boolean(b) => b.default.map(DefaultValue::Bool),
                _ => None,
            };
            let presence = match (required, nullable, default) {
                (true, true, _) => Presence::RequiredNullable,
                (true, false, _) => Presence::Required,
                (false, _, Some(d)) => Presence::Defaulted(d),
                (false, true, None) => Presence::OptionalNullable,
                (false, false, None) => Presence::Optional,
            };
            let doc = field.description().map(str::to_owned);
            fields.push(FieldIr { json: json.clone(), rust: names::snake(json), ty, presence, doc });
        }
        self.items.push(Item::Struct(Struct {
            name: name.to_owned(),
            doc,
            fields,
            keep_unknown,
            query: QueryReader::NotParams,
        }));
        Ok(())
    }

    fn string_enum(&mut self, name: &str, s: &lex::StringSchema, doc: Option<String>) -> Result<(), IrError> {
        self.claim(name)?;
        let (wire, closed) = match &s.enum_ {
            Some(values) => (values.clone(), true),
            None => (s.known_values.clone(), false),
        };
        let mut seen = BTreeSet::new();
        let mut values = Vec::new();
        for value in wire {
            // Known values may be token references (`app.bsky.graph.defs#modlist`); name the variant
            // after the part that distinguishes it.
            let short = value.rsplit(['#', '.']).next().unwrap_or(&value);
            let mut variant = names::camel(short);
            if variant.is_empty() || !seen.insert(variant.clone()) {
                variant = names::camel(&value.replace(['#', '.', ':', '/'], "-"));
                if !seen.insert(variant.clone()) {
                    continue; // a duplicate wire value
                }
            }
            values.push((variant, value));
        }
        self.items.push(Item::StringEnum(StringEnum { name: name.to_owned(), doc, values, closed }));
        Ok(())
    }

    /// The type of a field, creating named items for inline objects, unions and string enums.
    fn field_ty(&mut self, field: &Field, owner: &str, prop: &str) -> Result<Ty, IrError> {
        Ok(match field {
            Field::Boolean(_) => Ty::Bool,
            Field::Integer(_) => Ty::Int,
            Field::String(s) => {
                if let Some(format) = &s.format {
                    Ty::Format(format_type(format).ok_or_else(|| {
                        IrError::Unsupported(self.nsid.into(), owner.into(), format!("string format {format}"))
                    })?)
                } else if !s.known_values.is_empty() || s.enum_.is_some() {
                    let name = self.inline_name(owner, prop, "Values");
                    self.string_enum(&name, s, s.description.clone())?;
                    Ty::Named { path: self.path_of(&name), boxed: false }
                } else {
                    Ty::String
                }
            }
            Field::Bytes(_) => Ty::Bytes,
            Field::CidLink(_) => Ty::CidLink,
            Field::Blob(_) => Ty::Blob,
            Field::Unknown(_) => Ty::Unknown,
            Field::Array(a) => Ty::Vec(Box::new(self.field_ty(&a.items, owner, &format!("{prop}Item"))?)),
            Field::Object(o) => {
                let name = if prop.is_empty() { owner.to_owned() } else { self.inline_name(owner, prop, "Object") };
                self.object(&name, o, o.description.clone())?;
                Ty::Named { path: self.path_of(&name), boxed: false }
            }
            Field::Ref(r) => self.ref_ty(&r.target)?,
            Field::Union(u) => {
                let name = if prop.is_empty() { owner.to_owned() } else { self.inline_name(owner, prop, "Refs") };
                self.union(&name, u)?;
                Ty::Named { path: self.path_of(&name), boxed: false }
            }
        })
    }

    fn ref_ty(&self, reference: &str) -> Result<Ty, IrError> {
        let target = self
            .catalog
            .resolve(reference, self.nsid)
            .map_err(|_| IrError::Unresolved(self.nsid.into(), reference.into()))?;
        Ok(match target.def {
            Def::Token(_) => Ty::String,
            Def::String(s) if !s.known_values.is_empty() || s.enum_.is_some() => {
                Ty::Named { path: def_path(target.nsid, target.name, target.def), boxed: false }
            }
            Def::String(s) => match &s.format {
                Some(f) => Ty::Format(format_type(f).ok_or_else(|| {
                    IrError::Unsupported(self.nsid.into(), reference.into(), format!("string format {f}"))
                })?),
                None => Ty::String,
            },
            Def::Integer(_) => Ty::Int,
            Def::Boolean(_) => Ty::Bool,
            Def::Bytes(_) => Ty::Bytes,
            Def::CidLink(_) => Ty::CidLink,
            Def::Blob(_) => Ty::Blob,
            Def::Object(_) | Def::Record(_) | Def::Array(_) => {
                Ty::Named { path: def_path(target.nsid, target.name, target.def), boxed: false }
            }
            other => {
                return Err(IrError::Unsupported(
                    self.nsid.into(),
                    reference.into(),
                    format!("reference to a {} definition", other.kind()),
                ))
            }
        })
    }

    fn union(&mut self, name: &str, union: &lex::UnionSchema) -> Result<(), IrError> {
        self.claim(name)?;
        let mut resolved = Vec::new();
        for reference in &union.refs {
            let target = self
                .catalog
                .resolve(reference, self.nsid)
                .map_err(|_| IrError::Unresolved(self.nsid.into(), reference.into()))?;
            let ty = match target.def {
                Def::Object(_) | Def::Record(_) => {
                    Ty::Named { path: def_path(target.nsid, target.name, target.def), boxed: true }
                }
                other => {
                    return Err(IrError::Unsupported(
                        self.nsid.into(),
                        reference.into(),
                        format!("union member of kind {}", other.kind()),
                    ))
                }
            };
            let last = target.nsid.rsplit('.').next().unwrap_or(target.nsid);
            let short = match (target.name, target.nsid == self.nsid) {
                ("main", _) => names::camel(last),
                (def, true) => names::camel(def),
                (def, false) => format!("{}{}", names::camel(last), names::camel(def)),
            };
            let full = names::camel(&target.type_name().replace(['#', '.'], "-"));
            resolved.push((short, full, target.type_name(), ty));
        }
        let mut variants = Vec::new();
        for (short, full, type_name, ty) in &resolved {
            let clashes = resolved.iter().filter(|(s, ..)| s == short).count() > 1 || short == "Unknown";
            let name = if clashes { full.clone() } else { short.clone() };
            variants.push(Variant { name, type_name: type_name.clone(), ty: ty.clone() });
        }
        self.items.push(Item::Union(Union {
            name: name.to_owned(),
            doc: union.description.clone(),
            variants,
            closed: union.closed,
        }));
        Ok(())
    }
}

/// The direct reader for a `Params` struct, if every parameter is a kind it reads exactly as the
/// lexicon interpreter would: scalars and arrays of scalars, with no string default (which the
/// interpreter fills in) and no default its own schema refuses.
fn query_reader(params: &Struct, object: &lex::ObjectSchema) -> QueryReader {
    let mut rules = Vec::new();
    for field in &params.fields {
        let Some(schema) = object.properties.get(&field.json) else { return QueryReader::Interpreted };
        let direct = match schema {
            Field::Array(array) => {
                matches!(field.presence, Presence::Required | Presence::Optional) && direct_scalar(&array.items)
            }
            scalar => {
                matches!(field.presence, Presence::Required | Presence::Optional | Presence::Defaulted(_))
                    && direct_scalar(scalar)
            }
        };
        if !direct {
            return QueryReader::Interpreted;
        }
        rules.push(schema.clone());
    }
    QueryReader::Direct(rules)
}

fn direct_scalar(field: &Field) -> bool {
    match field {
        Field::Boolean(b) => match (b.default, b.const_) {
            (Some(default), Some(c)) => default == c,
            _ => true,
        },
        Field::Integer(i) => i.default.is_none_or(|n| integer_allowed(i, n)),
        Field::String(s) => s.default.is_none(),
        _ => false,
    }
}

/// Whether the lexicon interpreter accepts `n` for an integer of schema `i`.
fn integer_allowed(i: &lex::IntegerSchema, n: i64) -> bool {
    i.const_.is_none_or(|c| c == n)
        && i.enum_.as_ref().is_none_or(|values| values.contains(&n))
        && i.maximum.is_none_or(|max| n <= max)
        && i.minimum.is_none_or(|min| n >= min)
}

/// The facade type of a lexicon string format.
pub fn format_type(format: &str) -> Option<&'static str> {
    Some(match format {
        "did" => "Did",
        "handle" => "Handle",
        "nsid" => "Nsid",
        "at-uri" => "AtUri",
        "at-identifier" => "AtIdentifier",
        "tid" => "Tid",
        "record-key" => "RecordKey",
        "cid" => "CidString",
        "datetime" => "Datetime",
        "language" => "Language",
        "uri" => "Uri",
        _ => return None,
    })
}

/// A struct that holds itself through plain (non-`Vec`, non-union) fields would have infinite
/// size; box exactly the fields that close such a cycle.
fn box_recursive_fields(ir: &mut Ir) {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in ir.modules.values() {
        let base = format!("crate::{}", module.path.join("::"));
        for item in &module.items {
            if let Item::Struct(s) = item {
                let targets = s
                    .fields
                    .iter()
                    .filter_map(|f| match &f.ty {
                        Ty::Named { path, boxed: false } => Some(path.clone()),
                        _ => None,
                    })
                    .collect();
                edges.insert(format!("{base}::{}", s.name), targets);
            }
        }
    }
    let reaches = |from: &str, to: &str| -> bool {
        let mut stack = vec![from.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(node) = stack.pop() {
            if node == to {
                return true;
            }
            if seen.insert(node.clone()) {
                if let Some(next) = edges.get(&node) {
                    stack.extend(next.iter().cloned());
                }
            }
        }
        false
    };
    for module in ir.modules.values_mut() {
        let base = format!("crate::{}", module.path.join("::"));
        for item in &mut module.items {
            if let Item::Struct(s) = item {
                let me = format!("{base}::{}", s.name);
                for field in &mut s.fields {
                    if let Ty::Named { path, boxed } = &mut field.ty {
                        if !*boxed && reaches(path, &me) {
                            *boxed = true;
                        }
                    }
                }
            }
        }
    }
}
