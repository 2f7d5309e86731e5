use super::*;
use serde_json::Value;

const TOL: f64 = 1e-6;

fn vector() -> Value {
    // specs/judging.md §6 example G1 (vectors/grounding_vectors.json, copied).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vectors/grounding_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < TOL
}

fn ct(text: &str) -> Vec<String> {
    lexer().unwrap().content_tokens(text)
}

fn lex(text: &str) -> Lexicon {
    lexer().unwrap().lexicon(text)
}

fn split(text: &str) -> Vec<(usize, usize, String)> {
    lexer()
        .unwrap()
        .sentences(text)
        .into_iter()
        .map(|s| (s.span.0, s.span.1, s.text))
        .collect()
}

fn sent(start: usize, end: usize, text: &str) -> (usize, usize, String) {
    (start, end, text.to_string())
}

fn span(v: &Value) -> (usize, usize) {
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

fn g1() -> Analysis {
    let v = vector();
    let docs: Vec<&str> = v["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    analyze(v["answer"].as_str().unwrap(), &docs).unwrap()
}

#[test]
fn stopwords_are_the_vector_list() {
    let v = vector();
    let listed: Vec<&str> = v["stopwords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(STOPWORDS.to_vec(), listed);
    // Sorted: the lookup is a binary search.
    assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn tokens_example_of_the_vector() {
    let v = vector();
    let want: Vec<String> = serde_json::from_value(v["tokens_example"]["tokens"].clone()).unwrap();
    assert_eq!(ct(v["tokens_example"]["text"].as_str().unwrap()), want);
}

#[test]
fn g1_sentences_match_the_vector() {
    let v = vector();
    let want: Vec<(usize, usize, String)> = v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            sent(
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
                s[2].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(split(v["answer"].as_str().unwrap()), want);
}

#[test]
fn g1_groundedness_matches_the_vector() {
    let v = &vector()["groundedness"];
    let g = g1().groundedness();
    let want = v["sentences"].as_array().unwrap();
    assert_eq!(g.sentences.len(), want.len());
    for (got, w) in g.sentences.iter().zip(want) {
        assert_eq!(got.span, span(&w["span"]));
        assert_eq!(got.text, w["text"].as_str().unwrap());
        assert_eq!(got.claim, w["claim"].as_bool().unwrap(), "{}", got.text);
        match w.get("support") {
            Some(s) => {
                assert!(
                    close(got.support.unwrap(), s.as_f64().unwrap()),
                    "{}: {:?}",
                    got.text,
                    got.support
                );
                assert_eq!(got.supported, w["supported"].as_bool());
            }
            None => assert_eq!((got.support, got.supported), (None, None)),
        }
    }
    assert!(close(
        g.supported_ratio.unwrap(),
        v["supported_ratio"].as_f64().unwrap()
    ));
    assert!(close(
        g.mean_support.unwrap(),
        v["mean_support"].as_f64().unwrap()
    ));
    let spans: Vec<(usize, usize)> = v["hallucinated_spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(span)
        .collect();
    assert_eq!(g.hallucinated_spans, spans);
    assert_eq!((g.claims, g.supported_claims, g.passed), (5, 4, Some(true)));
}

/// The citation example of §6, with the numbers the spec gives.
#[test]
fn citation_example_of_section_6() {
    let passages = [
        "The trainer writes a checkpoint every 500 steps.",
        "Evaluation runs on the validation split after each epoch.",
    ];
    let answer = "The trainer writes a checkpoint every 500 steps [1]. Evaluation runs on the \
                  validation split after each epoch [2][1]. Checkpoints are uploaded to S3 [3].";
    let a = analyze(answer, &passages).unwrap();
    let c = a.citations();
    assert_eq!(c.claims.len(), 3);
    assert!(c.claims[0].joint);
    assert_eq!(c.claims[0].relevant, vec![true]);
    assert!(c.claims[1].joint);
    assert_eq!(c.claims[1].markers, vec!["2", "1"]);
    assert_eq!(c.claims[1].relevant, vec![true, false]);
    assert!(c.claims[2].invalid && !c.claims[2].joint);
    assert_eq!(c.claims[2].relevant, vec![false]);
    assert!(close(c.recall.unwrap(), 0.666667));
    assert!(close(c.precision.unwrap(), 0.5));
    assert_eq!((c.citations, c.relevant_citations), (4, 2));
    assert_eq!(c.invalid_citations.len(), 1);
    assert_eq!(c.invalid_citations[0].marker, "3");
    assert_eq!(c.invalid_citations[0].span, (118, 153));
    assert!(c.uncited_claim_spans.is_empty());

    let g = a.groundedness();
    assert!(close(g.sentences[2].support.unwrap(), 0.166667));
    assert!(close(g.supported_ratio.unwrap(), 0.666667));
    assert_eq!(g.hallucinated_spans, vec![(118, 153)]);
    assert_eq!(g.passed, Some(false));
}

/// G1's citations, derived by hand from §6 step 6: claims 1, 2, 3 and 5 are
/// jointly supported by what they cite, claim 4 (90 days) is not; [3] of
/// claim 2 and [2] of claim 5 are not relevant.
#[test]
fn g1_citations_by_hand() {
    let c = g1().citations();
    let joint: Vec<bool> = c.claims.iter().map(|k| k.joint).collect();
    assert_eq!(joint, vec![true, true, true, false, true]);
    let relevant: Vec<Vec<bool>> = c.claims.iter().map(|k| k.relevant.clone()).collect();
    assert_eq!(
        relevant,
        vec![
            vec![true],
            vec![true, false],
            vec![true],
            vec![false],
            vec![true, false]
        ]
    );
    assert!(close(c.recall.unwrap(), 0.8));
    assert!(close(c.precision.unwrap(), 4.0 / 7.0));
    assert!(c.invalid_citations.is_empty() && c.uncited_claim_spans.is_empty());
}

#[test]
fn tokens_follow_the_regex_stopwords_and_stem() {
    assert_eq!(ct("3.14.15"), vec!["3.14", "15"]);
    assert_eq!(ct("3.5x"), vec!["3.5", "x"]);
    // A letter-led token keeps its decimal part; it is not a number.
    assert_eq!(ct("v1.2 e.g. 3."), vec!["v1.2", "e", "g", "3"]);
    assert!(!is_number("v1.2") && is_number("3.14"));
    // Stemming: > 3 characters, final s, not ss, not digit-led.
    assert_eq!(
        ct("GPUs classes class bus gas 100s"),
        vec!["gpu", "classe", "class", "bus", "gas", "100s"]
    );
    // Stopwords go before stemming: "hers" is no stopword and becomes "her".
    assert_eq!(ct("its hers this"), vec!["her"]);
    // NFKC then lower case: fullwidth letters, the fi ligature, a circled digit.
    assert_eq!(ct("ＦｉｎｅＴｕｎｅ ﬁle ①"), vec!["finetune", "file", "1"]);
    // Markers become spaces before tokenising (digits of any script, as \d).
    assert_eq!(ct("see[12]gpus[１]x"), vec!["see", "gpu", "x"]);
    // Non-ASCII letters are no token characters.
    assert_eq!(ct("naïve café"), vec!["na", "ve", "caf"]);
}

#[test]
fn sentences_absorb_markers_after_terminal_punctuation() {
    assert_eq!(
        split("It saves checkpoints at intervals.[1] Next one here."),
        vec![
            sent(0, 37, "It saves checkpoints at intervals.[1]"),
            sent(38, 52, "Next one here.")
        ]
    );
    assert_eq!(
        split("Done.[1][2]\nNext"),
        vec![sent(0, 11, "Done.[1][2]"), sent(12, 16, "Next")]
    );
    // Absorbed markers followed by a letter: no split.
    assert_eq!(split("a.[1]b c."), vec![sent(0, 9, "a.[1]b c.")]);
    // A marker after a space does not follow the period directly.
    assert_eq!(
        split("Sure! [1] Next"),
        vec![sent(0, 5, "Sure!"), sent(6, 14, "[1] Next")]
    );
}

#[test]
fn sentences_split_on_terminals_before_space_and_on_newlines() {
    assert_eq!(
        split("Version 3.5 is out. Try it"),
        vec![sent(0, 19, "Version 3.5 is out."), sent(20, 26, "Try it")]
    );
    assert_eq!(
        split("3.14.15 is odd."),
        vec![sent(0, 15, "3.14.15 is odd.")]
    );
    assert_eq!(
        split("Wait... what?! Really"),
        vec![
            sent(0, 7, "Wait..."),
            sent(8, 14, "what?!"),
            sent(15, 21, "Really")
        ]
    );
    // Trailing spaces before a newline stay inside the span; empty and
    // all-whitespace segments are dropped.
    assert_eq!(
        split("First line  \n\n  second line.  "),
        vec![sent(0, 12, "First line"), sent(16, 28, "second line.")]
    );
    assert_eq!(split(""), vec![]);
    assert_eq!(split("  \n \n"), vec![]);
}

#[test]
fn spans_count_code_points_not_bytes() {
    assert_eq!(
        split("Café au lait. Über alles 🙂. Fin"),
        vec![
            sent(0, 13, "Café au lait."),
            sent(14, 27, "Über alles 🙂."),
            sent(28, 31, "Fin")
        ]
    );
}

#[test]
fn support_without_bigram_takes_b_equal_u() {
    // One content token: u = 1 and b = u, so support 1 (not 0.5).
    assert!(close(
        support(&lex("Checkpoints."), &[&lex("a checkpoint")]),
        1.0
    ));
    assert!(close(
        support(&lex("Checkpoints."), &[&lex("nothing here")]),
        0.0
    ));
}

#[test]
fn support_of_a_claim_with_numbers() {
    // CT(s) = trainer save 3 checkpoint every 500 step: u = 6/7,
    // b = 4/6, num = 1/2 (500 found, 3 not) → (3/7 + 1/3)·1/2 = 8/21.
    let s = lex("The trainer saves 3 checkpoints every 500 steps.");
    let p = lex("The trainer saves a checkpoint every 500 steps.");
    assert!(close(support(&s, &[&p]), 8.0 / 21.0));
    // Numbers compare as strings: 2.50 is not 2.5, so num = 0.
    assert!(close(
        support(
            &lex("The plan costs 2.50 dollars"),
            &[&lex("The plan costs 2.5 dollars")]
        ),
        0.0
    ));
}

#[test]
fn bigrams_stay_within_a_passage() {
    // u = 1; of (alpha beta), (beta gamma) only the second is in a passage.
    let s = lex("alpha beta gamma");
    assert!(close(
        support(&s, &[&lex("alpha"), &lex("beta gamma")]),
        0.75
    ));
    assert!(close(support(&s, &[&lex("alpha beta gamma")]), 1.0));
}

#[test]
fn an_answer_without_claims_has_no_ratio() {
    let g = analyze("Sure! Happy to help.", &["anything at all"])
        .unwrap()
        .groundedness();
    assert_eq!(g.claims, 0);
    assert_eq!(
        (g.supported_ratio, g.mean_support, g.passed),
        (None, None, None)
    );
    assert!(g.hallucinated_spans.is_empty());
    assert!(g.sentences.iter().all(|s| !s.claim && s.support.is_none()));
    let c = analyze("Sure! Happy to help.", &["anything at all"])
        .unwrap()
        .citations();
    assert_eq!((c.recall, c.precision), (None, None));
}

#[test]
fn citations_invalid_duplicate_and_uncited() {
    let passages = [
        "The trainer writes a checkpoint every 500 steps.",
        "alpha beta",
        "gamma delta",
    ];
    let answer = "The trainer writes a checkpoint every 500 steps [1][4]. \
                  The trainer writes a checkpoint every 500 steps [1][1]. \
                  Alpha beta gamma delta [2][3]. \
                  The trainer writes checkpoints. See [0].";
    let c = analyze(answer, &passages).unwrap().citations();
    // [4] is past the three passages: no joint support, nothing relevant.
    assert!(c.claims[0].invalid && !c.claims[0].joint);
    assert_eq!(c.claims[0].relevant, vec![false, false]);
    // [1][1]: each alone supports.
    assert!(c.claims[1].joint);
    assert_eq!(c.claims[1].relevant, vec![true, true]);
    // Neither passage alone supports (0.416667), together they do
    // (0.833333), and without either the other does not: both relevant.
    assert!(close(c.claims[2].support.unwrap(), 0.5 + 1.0 / 3.0));
    assert_eq!(c.claims[2].relevant, vec![true, true]);
    // "The trainer writes checkpoints." cites nothing; "See [0]." is no
    // claim, but its [0] is invalid all the same.
    assert_eq!(c.claims.len(), 4);
    assert_eq!(c.uncited_claim_spans, vec![c.claims[3].span]);
    let invalid: Vec<(&str, bool)> = c
        .invalid_citations
        .iter()
        .map(|i| (i.marker.as_str(), i.claim))
        .collect();
    assert_eq!(invalid, vec![("4", true), ("0", false)]);
    assert!(close(c.recall.unwrap(), 0.5));
    assert_eq!((c.citations, c.relevant_citations), (6, 4));
}

#[test]
fn markers_resolve_one_based() {
    assert_eq!(resolve_marker("1", 2), Some(0));
    assert_eq!(resolve_marker("2", 2), Some(1));
    assert_eq!(resolve_marker("3", 2), None);
    assert_eq!(resolve_marker("0", 2), None);
    assert_eq!(resolve_marker("99999999999999999999999", 2), None);
    assert_eq!(resolve_marker("２", 2), Some(1));
}
