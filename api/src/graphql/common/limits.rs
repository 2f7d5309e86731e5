//! Cost limits that hold before anything executes.
//!
//! async-graphql's depth and complexity limits count fields of the schema's
//! types: `__typename` aliases, fragment spreads, many operations in one
//! document, and directives are outside them, and a large query is parsed
//! whole before any limit is looked at. [`QueryLimits`] is an extension that
//! runs at parse time, for HTTP and WebSocket alike: it refuses a query text
//! over `query_bytes` before the parser sees it, then, on the parsed
//! document, counts operations, fragments, aliases, directives, and every
//! selection with fragment spreads expanded (so `__typename` and fragments
//! reused many times count for each use). Anything over its limit is
//! refused with `LIMIT_EXCEEDED` and the limit named.

use super::errors::Code;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Name, Positioned, ServerError, ServerResult, Variables};
use std::collections::HashMap;
use std::sync::Arc;

/// The limits, from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub query_bytes: usize,
    pub operations: usize,
    pub fragments: usize,
    pub selections: usize,
    pub aliases: usize,
    pub directives: usize,
}

impl QueryLimits {
    /// No limit (the SDL printer).
    pub fn unlimited() -> Self {
        Self {
            query_bytes: usize::MAX,
            operations: usize::MAX,
            fragments: usize::MAX,
            selections: usize::MAX,
            aliases: usize::MAX,
            directives: usize::MAX,
        }
    }

    /// Counts what can be read off the text before the parser sees it —
    /// fragment spreads (`...`), directives (`@`), aliases (`name:` in a
    /// selection set) and top-level definitions — strings and comments
    /// skipped: parsing ten thousand of any of them takes longer than
    /// refusing should.
    pub fn prescan(&self, query: &str) -> Result<(), String> {
        let (mut spreads, mut directives) = (0usize, 0usize);
        // Top-level `{`: one per operation or fragment definition.
        let (mut depth, mut definitions) = (0usize, 0usize);
        // `name: field` inside a selection set and outside parentheses is an alias.
        let (mut parens, mut aliases) = (0usize, 0usize);
        let b = query.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'#' => {
                    while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                        i += 1;
                    }
                }
                b'"' if b[i..].starts_with(b"\"\"\"") => {
                    i += 3;
                    while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                        i += if b[i..].starts_with(b"\\\"\"\"") {
                            4
                        } else {
                            1
                        };
                    }
                    i += 2;
                }
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'.' if b[i..].starts_with(b"...") => {
                    spreads += 1;
                    i += 2;
                }
                b'@' => directives += 1,
                b'{' => {
                    definitions += usize::from(depth == 0);
                    depth += 1;
                }
                b'}' => depth = depth.saturating_sub(1),
                b'(' => parens += 1,
                b')' => parens = parens.saturating_sub(1),
                b':' if parens == 0 && depth > 0 => aliases += 1,
                _ => {}
            }
            i += 1;
        }
        over(
            "operations and fragments per document",
            definitions,
            self.operations.saturating_add(self.fragments),
        )?;
        // A spread expands to at least one selection.
        over(
            "fragment spreads",
            spreads,
            self.selections.min(self.spreads()),
        )?;
        over("aliases", aliases, self.aliases)?;
        over("directives", directives, self.directives)
    }

    /// Spreads written in one document (inline fragments included).
    fn spreads(&self) -> usize {
        self.fragments.saturating_mul(10)
    }

    /// What `doc` costs; the first limit it exceeds is the error.
    pub fn check(&self, doc: &ExecutableDocument) -> Result<Cost, String> {
        let operations = doc.operations.iter().count();
        over("operations per document", operations, self.operations)?;
        over(
            "fragments per document",
            doc.fragments.len(),
            self.fragments,
        )?;
        let mut cost = Cost {
            operations,
            ..Cost::default()
        };
        // Aliases and directives of fragments nobody spreads were counted in
        // the text by `prescan`; here each use of a fragment counts.
        let mut walk = Walk {
            doc,
            limits: self,
            expanded: HashMap::new(),
        };
        for (_, op) in doc.operations.iter() {
            cost.directives += op.node.directives.len();
            cost.add(walk.selection_set(&op.node.selection_set)?);
            cost.within(self)?;
        }
        Ok(cost)
    }
}

fn over(what: &str, n: usize, limit: usize) -> Result<(), String> {
    if n > limit {
        Err(format!("{what}: {n} exceeds the limit of {limit}"))
    } else {
        Ok(())
    }
}

/// What a document asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub operations: usize,
    /// Fields selected, fragment spreads expanded at each use.
    pub selections: usize,
    pub aliases: usize,
    pub directives: usize,
}

impl Cost {
    fn add(&mut self, o: Cost) {
        self.selections = self.selections.saturating_add(o.selections);
        self.aliases = self.aliases.saturating_add(o.aliases);
        self.directives = self.directives.saturating_add(o.directives);
    }

    fn within(&self, l: &QueryLimits) -> Result<(), String> {
        over(
            "selections (fragments expanded)",
            self.selections,
            l.selections,
        )?;
        over("aliases", self.aliases, l.aliases)?;
        over("directives", self.directives, l.directives)
    }
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a QueryLimits,
    /// A fragment's cost once expanded; `None` while it is being expanded (a
    /// cycle, which validation reports).
    expanded: HashMap<&'a Name, Option<Cost>>,
}

impl<'a> Walk<'a> {
    /// The cost of a selection set with every spread expanded.
    fn selection_set(&mut self, set: &'a Positioned<SelectionSet>) -> Result<Cost, String> {
        let mut cost = Cost::default();
        for sel in &set.node.items {
            match &sel.node {
                Selection::Field(f) => {
                    cost.selections += 1;
                    cost.aliases += usize::from(f.node.alias.is_some());
                    cost.directives += f.node.directives.len();
                    cost.add(self.selection_set(&f.node.selection_set)?);
                }
                Selection::InlineFragment(i) => {
                    cost.directives += i.node.directives.len();
                    cost.add(self.selection_set(&i.node.selection_set)?);
                }
                Selection::FragmentSpread(s) => {
                    cost.directives += s.node.directives.len();
                    let name = &s.node.fragment_name.node;
                    let inner = match self.expanded.get(name) {
                        Some(Some(c)) => *c,
                        Some(None) => Cost::default(),
                        None => match self.doc.fragments.get(name) {
                            None => Cost::default(),
                            Some(def) => {
                                self.expanded.insert(name, None);
                                let mut c = self.selection_set(&def.node.selection_set)?;
                                c.directives += def.node.directives.len();
                                self.expanded.insert(name, Some(c));
                                c
                            }
                        },
                    };
                    cost.add(inner);
                }
            }
            // Stop as soon as a limit is passed: a bomb is not walked whole.
            cost.within(self.limits)?;
        }
        Ok(cost)
    }
}

fn refused(message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, e| e.set("code", Code::LimitExceeded.as_str()))
        .into_server_error(async_graphql::Pos::default())
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for QueryLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        over("query text (bytes)", query.len(), self.query_bytes).map_err(refused)?;
        self.prescan(query).map_err(refused)?;
        let doc = next.run(ctx, query, variables).await?;
        self.check(&doc).map_err(refused)?;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(q: &str) -> Result<Cost, String> {
        let doc = async_graphql::parser::parse_query(q).map_err(|e| e.to_string())?;
        QueryLimits::unlimited().check(&doc)
    }

    #[test]
    fn selections_count_each_use_of_a_fragment_and_every_alias() {
        // Counted by hand: 2 fields in F, spread 3 times under `a`, `b`, `c`.
        let c = cost(
            "query { a: jobs { ...F } b: jobs { ...F } c: jobs { ...F @include(if: true) } }
             fragment F on JobConnection { totalCount t: __typename }",
        )
        .unwrap();
        assert_eq!(c.selections, 3 + 3 * 2);
        assert_eq!(c.aliases, 3 + 3);
        assert_eq!(c.directives, 1);
        assert_eq!(c.operations, 1);
        // Nested spreads multiply: G = 2 × F, F = 2 fields.
        let c =
            cost("{ x { ...G } } fragment G on T { ...F ...F } fragment F on T { a b }").unwrap();
        assert_eq!(c.selections, 1 + 4);
        // A cycle does not loop (validation reports it).
        assert_eq!(
            cost("{ x { ...A } } fragment A on T { y ...B } fragment B on T { z ...A }")
                .unwrap()
                .selections,
            3
        );
        let c = cost("query A { a } query B { b c } mutation C { d }").unwrap();
        assert_eq!((c.operations, c.selections), (3, 4));
    }

    #[test]
    fn each_limit_refuses_with_its_name() {
        let l = QueryLimits {
            query_bytes: 1 << 20,
            operations: 2,
            fragments: 1,
            selections: 10,
            aliases: 3,
            directives: 2,
        };
        let check = |q: &str| l.check(&async_graphql::parser::parse_query(q).unwrap());
        assert!(check("{ a b c }").is_ok());
        // Before parsing: spreads and directives in the text, not in strings or comments.
        assert!(l.prescan("{ a(s: \"@@@ ... ...\") # @@@ ...\n b }").is_ok());
        assert!(
            l.prescan("{ a(s: \"\"\" @ \\\"\"\" @ ... \"\"\") }")
                .is_ok()
        );
        let e = l
            .prescan("query A { a } query B { b } { c } fragment F on T { d }")
            .unwrap_err();
        assert!(
            e.starts_with("operations and fragments per document: 4"),
            "{e}"
        );
        assert!(
            l.prescan("query($v: Int = 1) { a: x(y: {z: 1}) b: x c: x }")
                .is_ok()
        );
        let e = l.prescan("{ a: x b: x { c: y d: y } }").unwrap_err();
        assert!(e.starts_with("aliases: 4"), "{e}");
        let e = l.prescan("{ a @x @y @z }").unwrap_err();
        assert!(e.starts_with("directives: 3"), "{e}");
        let e = l
            .prescan(&format!("{{ {} }}", "...F ".repeat(11)))
            .unwrap_err();
        assert!(
            e.starts_with("fragment spreads: 11 exceeds the limit of 10"),
            "{e}"
        );
        let e = check("query A { a } query B { a } query C { a }").unwrap_err();
        assert!(e.starts_with("operations per document: 3"), "{e}");
        let e = check("{ a b } fragment F on T { a } fragment G on T { a }").unwrap_err();
        assert!(e.starts_with("fragments per document: 2"), "{e}");
        let e = check("{ a: __typename b: __typename c: __typename d: __typename }").unwrap_err();
        assert!(e.starts_with("aliases: 4"), "{e}");
        let e = check("{ a @skip(if: false) b @skip(if: false) c @skip(if: false) }").unwrap_err();
        assert!(e.starts_with("directives: 3"), "{e}");
        let e = check("{ x { ...F ...F ...F } } fragment F on T { a b c d }").unwrap_err();
        assert!(e.starts_with("selections (fragments expanded): "), "{e}");
        // Aliases inside a fragment nobody spreads still count.
        let e = l
            .prescan("{ a } fragment F on T { a: x b: x c: x d: x }")
            .unwrap_err();
        assert!(e.starts_with("aliases: 4"), "{e}");
    }
}
