//! GraphiQL, served whole from the binary: the page, its start-up script,
//! and GraphiQL's and React's bundles (vendored from npm by
//! `scripts/vendor-graphiql.sh`, stored gzipped). Nothing is loaded from a
//! CDN, so the IDE works on an air-gapped machine, and the page's Content
//! Security Policy allows scripts from this origin only.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::io::Read;

/// `script-src 'self'`: no inline or foreign script runs on the page.
/// GraphiQL sets inline styles and inlines its fonts as data URLs.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const PAGE: &str = include_str!("../assets/graphiql/index.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    /// The bytes, gzipped when `gzipped`.
    bytes: &'static [u8],
    gzipped: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/init.js"),
        gzipped: false,
    },
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/graphiql.min.js.gz"),
        gzipped: true,
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/graphiql.min.css.gz"),
        gzipped: true,
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/react.production.min.js.gz"),
        gzipped: true,
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/react-dom.production.min.js.gz"),
        gzipped: true,
    },
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphiql/{file}", web::get().to(asset));
}

/// The IDE's page (`GET /graphql` without a WebSocket upgrade).
pub fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let Some(a) = ASSETS.iter().find(|a| a.name == file.as_str()) else {
        return HttpResponse::NotFound().json(serde_json::json!({
            "code": "not_found", "message": format!("no GraphiQL asset {file}")
        }));
    };
    let mut res = HttpResponse::Ok();
    res.content_type(a.content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::VARY, "Accept-Encoding"));
    if !a.gzipped {
        return res.body(a.bytes);
    }
    if accepts_gzip(&req) {
        // Stored compressed: sent as it is.
        return res
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(a.bytes);
    }
    match inflate(a.bytes) {
        Ok(plain) => res.body(plain),
        Err(e) => {
            tracing::error!(asset = a.name, error = %e, "embedded GraphiQL asset is corrupt");
            HttpResponse::InternalServerError().json(serde_json::json!({
                "code": "internal", "message": "embedded asset unreadable"
            }))
        }
    }
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn inflate(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each embedded bundle is, byte for byte, the file npm published (the
    /// sums were taken from the integrity-checked tarballs).
    #[test]
    fn embedded_bundles_match_the_published_files() {
        let sums = include_str!("../assets/graphiql/SHA256SUMS");
        let gzipped: Vec<_> = ASSETS.iter().filter(|a| a.gzipped).collect();
        assert_eq!(gzipped.len(), sums.lines().count());
        for a in gzipped {
            let want = sums
                .lines()
                .find_map(|l| l.strip_suffix(a.name)?.split_whitespace().next())
                .unwrap_or_else(|| panic!("no sum for {}", a.name));
            let got = ftl_commands::digest::sha256_hex(&inflate(a.bytes).unwrap());
            assert_eq!(got, want, "{}", a.name);
        }
    }

    /// The page loads only this server's scripts, each of which exists.
    #[test]
    fn the_page_names_only_embedded_scripts() {
        let srcs: Vec<&str> = PAGE
            .split("src=\"")
            .skip(1)
            .chain(PAGE.split("href=\"").skip(1))
            .filter_map(|s| s.split('"').next())
            .collect();
        assert_eq!(srcs.len(), 5, "{srcs:?}");
        for s in srcs {
            let name = s
                .strip_prefix("/graphiql/")
                .unwrap_or_else(|| panic!("{s} is not served here"));
            assert!(ASSETS.iter().any(|a| a.name == name), "{name}");
        }
        assert!(
            !PAGE.contains("<script>"),
            "an inline script breaks the CSP"
        );
    }

    #[test]
    fn gzip_negotiation() {
        let req = |v: &str| {
            actix_web::test::TestRequest::default()
                .insert_header((header::ACCEPT_ENCODING, v))
                .to_http_request()
        };
        assert!(accepts_gzip(&req("gzip, deflate, br")));
        assert!(accepts_gzip(&req("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&req("*")));
        assert!(!accepts_gzip(&req("gzip;q=0")));
        assert!(!accepts_gzip(&req("identity")));
        assert!(!accepts_gzip(
            &actix_web::test::TestRequest::default().to_http_request()
        ));
    }
}
