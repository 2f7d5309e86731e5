//! The text validators: `required_elements` and `format` (JSON Schema, regex,
//! length bounds).

use super::{MAX_PATTERN_LEN, TestCase, ValidatorResult};
use crate::DomainError;
use regex::Regex;
use serde_json::Value;

/// Schema errors listed in a reason, at most.
const MAX_REPORTED_ERRORS: usize = 10;

pub fn check_required(case: &TestCase) -> Result<(), DomainError> {
    if case.required_elements.is_empty() {
        return Err(DomainError::invalid(
            "required_elements",
            "the required_elements validator needs at least one element",
        ));
    }
    if let Some(i) = case
        .required_elements
        .iter()
        .position(|e| e.trim().is_empty())
    {
        return Err(DomainError::invalid(
            format!("required_elements[{i}]"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// Every required element appears in the output, case-insensitively (both
/// lower-cased); the score is the share present, the reason names the
/// missing ones.
pub fn required_elements(case: &TestCase, output: &str) -> Result<ValidatorResult, DomainError> {
    check_required(case)?;
    let haystack = output.to_lowercase();
    let missing: Vec<&str> = case
        .required_elements
        .iter()
        .filter(|e| !haystack.contains(&e.to_lowercase()))
        .map(String::as_str)
        .collect();
    let total = case.required_elements.len();
    let present = total - missing.len();
    let reason = if missing.is_empty() {
        format!("all {total} required elements present")
    } else {
        let names: Vec<String> = missing.iter().map(|m| format!("{m:?}")).collect();
        format!("missing {} of {total}: {}", missing.len(), names.join(", "))
    };
    Ok(ValidatorResult {
        passed: missing.is_empty(),
        score: Some(present as f64 / total as f64),
        reason,
        spans: Vec::new(),
    })
}

/// A case's format rules, compiled.
pub struct FormatRules {
    schema: Option<jsonschema::Validator>,
    pattern: Option<Regex>,
    min_length: Option<usize>,
    max_length: Option<usize>,
}

impl FormatRules {
    /// Compile the rules; at least one is needed. The schema is built
    /// offline (a `$ref` to anything outside it is refused) with `format`
    /// keywords asserted.
    pub fn compile(case: &TestCase) -> Result<Self, DomainError> {
        if case.output_schema.is_none()
            && case.output_pattern.is_none()
            && case.min_length.is_none()
            && case.max_length.is_none()
        {
            return Err(DomainError::invalid(
                "output_schema",
                "the format validator needs output_schema, output_pattern, min_length or max_length",
            ));
        }
        let schema = case
            .output_schema
            .as_ref()
            .map(|s| {
                jsonschema::options()
                    .offline()
                    .should_validate_formats(true)
                    .build(s)
                    .map_err(|e| {
                        DomainError::invalid("output_schema", format!("invalid JSON Schema: {e}"))
                    })
            })
            .transpose()?;
        let pattern = case
            .output_pattern
            .as_deref()
            .map(|p| {
                if p.len() > MAX_PATTERN_LEN {
                    return Err(DomainError::limit(
                        "output_pattern",
                        format!("at most {MAX_PATTERN_LEN} bytes"),
                    ));
                }
                Regex::new(p).map_err(|e| {
                    DomainError::invalid("output_pattern", format!("invalid regex: {e}"))
                })
            })
            .transpose()?;
        if let (Some(min), Some(max)) = (case.min_length, case.max_length)
            && min > max
        {
            return Err(DomainError::invalid(
                "max_length",
                format!("must be at least min_length ({min}; got {max})"),
            ));
        }
        Ok(Self {
            schema,
            pattern,
            min_length: case.min_length,
            max_length: case.max_length,
        })
    }

    /// Every broken rule, described; empty when the output complies.
    pub fn problems(&self, output: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let length = output.chars().count();
        if let Some(min) = self.min_length.filter(|min| length < *min) {
            problems.push(format!("{length} characters, fewer than min_length {min}"));
        }
        if let Some(max) = self.max_length.filter(|max| length > *max) {
            problems.push(format!("{length} characters, more than max_length {max}"));
        }
        if let Some(re) = self.pattern.as_ref().filter(|re| !re.is_match(output)) {
            problems.push(format!("does not match output_pattern {:?}", re.as_str()));
        }
        if let Some(schema) = &self.schema {
            match serde_json::from_str::<Value>(output) {
                Err(e) => problems.push(format!("not valid JSON: {e}")),
                Ok(instance) => {
                    let errors: Vec<String> = schema
                        .iter_errors(&instance)
                        .map(|e| {
                            let at = e.instance_path().to_string();
                            let at = if at.is_empty() { "/".to_string() } else { at };
                            format!("{at}: {e}")
                        })
                        .collect();
                    if !errors.is_empty() {
                        let shown = errors.len().min(MAX_REPORTED_ERRORS);
                        let more = errors.len() - shown;
                        let mut line = format!(
                            "does not match output_schema: {}",
                            errors[..shown].join("; ")
                        );
                        if more > 0 {
                            line.push_str(&format!("; and {more} more"));
                        }
                        problems.push(line);
                    }
                }
            }
        }
        problems
    }
}

/// The output complies with the case's format rules: a JSON Schema (the
/// output parsed as JSON), a regex found in it, and length bounds in code
/// points. Pass/fail, no score; the reason lists every broken rule.
pub fn format(case: &TestCase, output: &str) -> Result<ValidatorResult, DomainError> {
    let problems = FormatRules::compile(case)?.problems(output);
    Ok(ValidatorResult {
        passed: problems.is_empty(),
        score: None,
        reason: if problems.is_empty() {
            "output complies with the format rules".to_string()
        } else {
            problems.join("; ")
        },
        spans: Vec::new(),
    })
}
