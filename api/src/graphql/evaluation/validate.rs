//! `validateOutput`: the model-free validators on given text, as the
//! frontend's "try this validator" preview. Pure: no model call, no write.

use crate::graphql::common::{Code, domain_error, gql_error};
use async_graphql::{InputObject, SimpleObject};
use ftl_domain::evaluation::suite::upload::MAX_ROW_BYTES;
use ftl_domain::evaluation::validators::{self, Message, Passage, TestCase, ValidatorKind};

/// The longest output the preview checks, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// A test case as the validators read it (the shape of an uploaded case).
#[derive(InputObject, Debug, Clone, Default)]
pub struct TestCaseInput {
    #[graphql(default)]
    pub messages: Vec<MessageInput>,
    pub reference_answer: Option<String>,
    /// Passages; a citation `[k]` names the k-th (1-based).
    #[graphql(default)]
    pub context: Vec<PassageInput>,
    #[graphql(default)]
    pub required_elements: Vec<String>,
    pub output_schema: Option<async_graphql::Json<serde_json::Value>>,
    pub output_pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    #[graphql(default)]
    pub require_citations: bool,
}

#[derive(InputObject, Debug, Clone)]
pub struct MessageInput {
    pub role: String,
    pub content: String,
}

#[derive(InputObject, Debug, Clone)]
pub struct PassageInput {
    pub id: String,
    pub text: String,
}

impl TestCaseInput {
    fn into_case(self) -> TestCase {
        TestCase {
            messages: self
                .messages
                .into_iter()
                .map(|m| Message {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
            reference_answer: self.reference_answer,
            context: self
                .context
                .into_iter()
                .map(|p| Passage {
                    id: p.id,
                    text: p.text,
                })
                .collect(),
            required_elements: self.required_elements,
            output_schema: self.output_schema.map(|j| j.0),
            output_pattern: self.output_pattern,
            min_length: self.min_length.map(|n| n as usize),
            max_length: self.max_length.map(|n| n as usize),
            require_citations: self.require_citations,
            tags: vec![],
        }
    }
}

/// One validator's finding.
#[derive(SimpleObject, Clone, Debug)]
pub struct ValidatorOutcome {
    pub validator: String,
    pub passed: bool,
    /// 0–1 where the validator has a score.
    pub score: Option<f64>,
    pub reason: String,
    /// `[start, end)` in Unicode code points of the output.
    pub spans: Vec<OutputSpan>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct OutputSpan {
    pub start: u64,
    pub end: u64,
}

/// The validators a case configures: the grounding family with context,
/// required elements when listed, format with any format rule.
fn configured(case: &TestCase) -> Vec<ValidatorKind> {
    let mut out = vec![];
    if !case.context.is_empty() {
        out.extend([
            ValidatorKind::NoHallucination,
            ValidatorKind::Groundedness,
            ValidatorKind::Citations,
        ]);
    }
    if !case.required_elements.is_empty() {
        out.push(ValidatorKind::RequiredElements);
    }
    if case.output_schema.is_some()
        || case.output_pattern.is_some()
        || case.min_length.is_some()
        || case.max_length.is_some()
    {
        out.push(ValidatorKind::Format);
    }
    out
}

pub fn run(
    case: TestCaseInput,
    output: &str,
    validators: Option<Vec<String>>,
) -> async_graphql::Result<Vec<ValidatorOutcome>> {
    if output.len() > MAX_OUTPUT_BYTES {
        return Err(gql_error(
            Code::LimitExceeded,
            format!("output: at most {MAX_OUTPUT_BYTES} bytes"),
        ));
    }
    let case = case.into_case();
    let size = serde_json::to_vec(&case).map(|v| v.len()).unwrap_or(0);
    if size > MAX_ROW_BYTES {
        return Err(gql_error(
            Code::LimitExceeded,
            format!("case: at most {MAX_ROW_BYTES} bytes of JSON; this one is {size}"),
        ));
    }
    let kinds = match validators {
        Some(ids) if ids.len() > ValidatorKind::ALL.len() => {
            return Err(gql_error(
                Code::LimitExceeded,
                format!("validators: at most {}", ValidatorKind::ALL.len()),
            ));
        }
        Some(ids) => {
            let mut kinds = vec![];
            for id in &ids {
                let k = ValidatorKind::parse(id).map_err(domain_error)?;
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            kinds
        }
        None => configured(&case),
    };
    if kinds.is_empty() {
        return Err(gql_error(
            Code::InvalidInput,
            "the case configures no validator: give `validators`, context, required elements or a format rule",
        ));
    }
    kinds
        .into_iter()
        .map(|k| {
            validators::check_config(k, &case).map_err(domain_error)?;
            let r = validators::run(k, &case, output).map_err(domain_error)?;
            Ok(ValidatorOutcome {
                validator: k.id().to_string(),
                passed: r.passed,
                score: r.score,
                reason: r.reason,
                spans: r
                    .spans
                    .into_iter()
                    .map(|(s, e)| OutputSpan {
                        start: s as u64,
                        end: e as u64,
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(id: &str, text: &str) -> PassageInput {
        PassageInput {
            id: id.into(),
            text: text.into(),
        }
    }

    #[test]
    fn configured_validators_run_and_report_by_id() {
        let case = TestCaseInput {
            context: vec![passage("p1", "The Eiffel Tower is in Paris.")],
            required_elements: vec!["paris".into()],
            ..Default::default()
        };
        let out = run(case, "The Eiffel Tower is in Paris [1].", None).unwrap();
        let ids: Vec<&str> = out.iter().map(|o| o.validator.as_str()).collect();
        assert_eq!(
            ids,
            [
                "no_hallucination",
                "groundedness",
                "citations",
                "required_elements"
            ]
        );
        assert!(out.iter().all(|o| o.passed), "{out:?}");
    }

    #[test]
    fn a_missing_element_fails_with_a_reason_not_an_error() {
        let case = TestCaseInput {
            required_elements: vec!["refund".into(), "receipt".into()],
            ..Default::default()
        };
        let out = run(case, "Bring your receipt.", None).unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out[0].passed);
        assert!(out[0].reason.contains("refund"), "{}", out[0].reason);
    }

    #[test]
    fn bad_requests_are_refused_with_codes() {
        let code = |e: async_graphql::Error| {
            e.extensions
                .and_then(|x| x.get("code").cloned())
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        let unknown = run(TestCaseInput::default(), "x", Some(vec!["vibes".into()])).unwrap_err();
        assert_eq!(code(unknown), "\"INVALID_INPUT\"");
        // Groundedness without context is a configuration error, not a score.
        let no_context = run(
            TestCaseInput::default(),
            "x",
            Some(vec!["groundedness".into()]),
        )
        .unwrap_err();
        assert!(
            no_context.message.contains("context"),
            "{}",
            no_context.message
        );
        let bad_schema = TestCaseInput {
            output_schema: Some(async_graphql::Json(serde_json::json!({"type": 12}))),
            ..Default::default()
        };
        assert_eq!(
            code(run(bad_schema, "{}", None).unwrap_err()),
            "\"INVALID_INPUT\""
        );
        let long = "x".repeat(MAX_OUTPUT_BYTES + 1);
        assert_eq!(
            code(run(TestCaseInput::default(), &long, None).unwrap_err()),
            "\"LIMIT_EXCEEDED\""
        );
        assert_eq!(
            code(run(TestCaseInput::default(), "x", None).unwrap_err()),
            "\"INVALID_INPUT\""
        );
    }
}
