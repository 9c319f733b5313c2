//! What methods enforce beyond their lexicons (`codegen/server-rules.json`), merged into the
//! OpenAPI document: the lexicon says what a valid request looks like to any server, this file
//! what this one accepts, so a client generated from the document is not surprised.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The parsed file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRules {
    #[serde(default, rename = "about")]
    _about: Vec<String>,
    /// Named patterns, used as `"pattern": "$name"`.
    #[serde(default)]
    patterns: BTreeMap<String, Value>,
    #[serde(default)]
    methods: BTreeMap<String, MethodRules>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRules {
    /// Keywords merged into each named query parameter's schema.
    #[serde(default)]
    params: BTreeMap<String, Map<String, Value>>,
    /// Keywords merged into the JSON body's schema.
    #[serde(default)]
    input: Option<InputRules>,
    /// Error names by HTTP status.
    #[serde(default)]
    pub errors: BTreeMap<u16, Vec<String>>,
    /// Checks JSON Schema cannot state.
    #[serde(default)]
    pub rules: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputRules {
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    properties: BTreeMap<String, Value>,
}

impl ServerRules {
    pub fn parse(text: &str) -> Result<ServerRules, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The rules of `nsid`, if it has any.
    pub fn method(&self, nsid: &str) -> Option<&MethodRules> {
        self.methods.get(nsid)
    }

    /// Every method the file names, to check each against the catalog.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    /// `value` with `"$name"` patterns replaced by the named pattern.
    fn resolve(&self, mut value: Value) -> Result<Value, String> {
        if let Value::Object(map) = &mut value {
            for (key, inner) in map.iter_mut() {
                if let (true, Some(name)) = (key == "pattern", inner.as_str().and_then(|p| p.strip_prefix('$'))) {
                    *inner = self.patterns.get(name).cloned().ok_or_else(|| format!("no pattern named {name}"))?;
                } else {
                    *inner = self.resolve(std::mem::take(inner))?;
                }
            }
        }
        Ok(value)
    }
}

impl MethodRules {
    /// Merges the parameter rules into an operation's `parameters`.
    pub fn apply_params(&self, rules: &ServerRules, parameters: &mut [Value]) -> Result<(), String> {
        for (name, keywords) in &self.params {
            let parameter = parameters
                .iter_mut()
                .find(|p| p["name"] == name.as_str())
                .ok_or_else(|| format!("no parameter {name}"))?;
            for (key, value) in keywords {
                if key == "required" {
                    parameter["required"] = value.clone();
                } else {
                    parameter["schema"][key] = rules.resolve(value.clone())?;
                }
            }
        }
        Ok(())
    }

    /// Merges the input rules into the JSON body's schema (an object schema).
    pub fn apply_input(&self, rules: &ServerRules, schema: &mut Value) -> Result<(), String> {
        let Some(input) = &self.input else { return Ok(()) };
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            return Err("the input is not an object with properties".to_owned());
        };
        for (name, rule) in &input.properties {
            let property = properties.get_mut(name).ok_or_else(|| format!("no input property {name}"))?;
            match rules.resolve(rule.clone())? {
                Value::Object(keywords) => {
                    for (key, value) in keywords {
                        property[key] = value;
                    }
                }
                other => *property = other,
            }
        }
        if !input.required.is_empty() {
            let mut required: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
            for name in &input.required {
                if !required.iter().any(|r| r == name.as_str()) {
                    required.push(Value::String(name.clone()));
                }
            }
            schema["required"] = Value::Array(required);
        }
        Ok(())
    }
}
