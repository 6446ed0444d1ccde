//! Pagination, sorting, name filtering and column selection for every list
//! endpoint, as RabbitMQ 3.x's management API does them: `sort` (a field,
//! dotted for nested ones) and `sort_reverse` always; `columns` always;
//! `name` (a case-insensitive substring, or a regex with `use_regex=true`)
//! only with `page`, which also wraps the items in RabbitMQ's page object.

use serde_json::{json, Map, Value};

/// RabbitMQ's largest `page_size`.
pub const MAX_PAGE_SIZE: usize = 500;
const DEFAULT_PAGE_SIZE: usize = 100;

/// A refused query: RabbitMQ's `error` and `reason` (HTTP 400).
#[derive(Debug, PartialEq)]
pub struct BadQuery {
    pub error: &'static str,
    pub reason: String,
}

/// The query's value for `key` (the first one), percent-decoded.
pub fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Splits and percent-decodes a query string (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Applies the query to `items` (each a JSON object).
pub fn apply(mut items: Vec<Value>, query: &[(String, String)]) -> Result<Value, BadQuery> {
    let reverse = param(query, "sort_reverse") == Some("true");
    let sort = param(query, "sort").filter(|s| !s.is_empty());
    if let Some(key) = sort {
        items.sort_by(|a, b| compare(field(a, key), field(b, key)));
    }
    if reverse {
        items.reverse();
    }
    let page = match param(query, "page") {
        None => return Ok(Value::Array(select(items, query))),
        Some(p) => p,
    };
    let size = param(query, "page_size").unwrap_or("");
    let (page, page_size) = match (
        page.parse::<usize>(),
        if size.is_empty() {
            Ok(DEFAULT_PAGE_SIZE)
        } else {
            size.parse::<usize>()
        },
    ) {
        (Ok(p), Ok(s)) if p >= 1 && (1..=MAX_PAGE_SIZE).contains(&s) => (p, s),
        _ => {
            return Err(BadQuery {
                error: "invalid_pagination_parameters",
                reason: format!(
                    "Invalid pagination parameters: page number {page}, page size {size}"
                ),
            })
        }
    };
    let total = items.len();
    if let Some(name) = param(query, "name").filter(|n| !n.is_empty()) {
        let matches: Box<dyn Fn(&str) -> bool> = if param(query, "use_regex") == Some("true") {
            let re = regex::RegexBuilder::new(name)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| BadQuery {
                    error: "bad_request",
                    reason: format!("invalid regex '{name}': {e}"),
                })?;
            Box::new(move |s: &str| re.is_match(s))
        } else {
            let needle = name.to_lowercase();
            Box::new(move |s: &str| s.to_lowercase().contains(&needle))
        };
        items.retain(|i| i.get("name").and_then(Value::as_str).is_some_and(&matches));
    }
    let filtered = items.len();
    let page_count = filtered.div_ceil(page_size);
    if page > page_count.max(1) {
        return Err(BadQuery {
            error: "page_out_of_range",
            reason: format!(
                "Page out of range, page: {page} page size: {page_size}, len: {filtered}"
            ),
        });
    }
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .collect();
    let page_items = select(page_items, query);
    Ok(json!({
        "filtered_count": filtered,
        "item_count": page_items.len(),
        "items": page_items,
        "page": page,
        "page_count": page_count,
        "page_size": page_size,
        "total_count": total,
    }))
}

/// A dotted field of an item (`message_stats.publish`).
fn field<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, k| v.get(k))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Keeps only `columns` (dotted paths keep nested fields).
fn select(items: Vec<Value>, query: &[(String, String)]) -> Vec<Value> {
    let Some(columns) = param(query, "columns").filter(|c| !c.is_empty()) else {
        return items;
    };
    let paths: Vec<&str> = columns.split(',').collect();
    items
        .into_iter()
        .map(|item| {
            let mut out = Value::Object(Map::new());
            for path in &paths {
                if let Some(v) = field(&item, path) {
                    insert(&mut out, path, v.clone());
                }
            }
            out
        })
        .collect()
}

fn insert(out: &mut Value, path: &str, v: Value) {
    let mut keys = path.split('.').peekable();
    let mut at = out;
    while let Some(k) = keys.next() {
        let Value::Object(map) = at else { return };
        if keys.peek().is_none() {
            map.insert(k.to_string(), v);
            return;
        }
        at = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        (0..5)
            .map(|i| json!({"name": format!("Q{i}"), "messages": 5 - i, "x": {"y": i}}))
            .collect()
    }

    #[test]
    fn without_page_an_array_sorted_and_selected() {
        let q = parse_query("sort=messages&columns=name,x.y");
        let v = apply(items(), &q).unwrap();
        assert_eq!(v[0], json!({"name": "Q4", "x": {"y": 4}}));
        assert_eq!(v.as_array().unwrap().len(), 5);
        let v = apply(
            items(),
            &parse_query("sort=name&sort_reverse=true&name=zzz"),
        )
        .unwrap();
        assert_eq!(v[0]["name"], "Q4", "name filters only with page");
        assert_eq!(v.as_array().unwrap().len(), 5);
    }

    #[test]
    fn pages_filter_and_refuse_like_rabbitmq() {
        let v = apply(items(), &parse_query("page=2&page_size=2&sort=name")).unwrap();
        assert_eq!(v["items"][0]["name"], "Q2");
        assert_eq!(
            (&v["page_count"], &v["total_count"], &v["item_count"]),
            (&json!(3), &json!(5), &json!(2))
        );
        let v = apply(items(), &parse_query("page=1&name=q3")).unwrap();
        assert_eq!(v["filtered_count"], 1);
        let v = apply(
            items(),
            &parse_query("page=1&name=%5EQ%5B12%5D&use_regex=true"),
        )
        .unwrap();
        assert_eq!(v["filtered_count"], 2);
        let v = apply(items(), &parse_query("page=1&name=zzz")).unwrap();
        assert_eq!(v["page_count"], 0, "an empty first page is no error");
        let e = apply(items(), &parse_query("page=4&page_size=2")).unwrap_err();
        assert_eq!(e.error, "page_out_of_range");
        let e = apply(items(), &parse_query("page=1&page_size=600")).unwrap_err();
        assert_eq!(e.error, "invalid_pagination_parameters");
        let e = apply(items(), &parse_query("page=1&name=(&use_regex=true")).unwrap_err();
        assert_eq!(e.error, "bad_request");
    }
}
