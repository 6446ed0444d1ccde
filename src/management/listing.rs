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
pub fn apply(items: Vec<Value>, query: &[(String, String)]) -> Result<Value, BadQuery> {
    let selection = plan(
        items.len(),
        query,
        |i| items[i].get("name").and_then(Value::as_str),
        |i, key| field(&items[i], key).cloned(),
    )?;
    let mut items: Vec<Option<Value>> = items.into_iter().map(Some).collect();
    let chosen = selection
        .order
        .iter()
        .filter_map(|&i| items[i].take())
        .collect();
    Ok(selection.finish(chosen, query))
}

/// What a list query picks of `count` items, before any is rendered: the
/// positions to render, in order, and the page's counts (None: no `page`,
/// the answer is a bare array). Lets a large list (100 k queues) be
/// sorted and paged on light references, rendering only the page.
#[derive(Debug)]
pub struct Selection {
    pub order: Vec<usize>,
    page: Option<PageCounts>,
}

#[derive(Debug)]
struct PageCounts {
    page: usize,
    page_size: usize,
    page_count: usize,
    filtered: usize,
    total: usize,
}

/// Plans `query` over `count` items: `name(i)` is item `i`'s name (for
/// the `name` filter), `key(i, field)` its value of a (dotted) sort field.
/// Sorting is stable, so items equal on the sort field keep the order
/// they came in.
pub fn plan<'a>(
    count: usize,
    query: &[(String, String)],
    name: impl Fn(usize) -> Option<&'a str>,
    key: impl Fn(usize, &str) -> Option<Value>,
) -> Result<Selection, BadQuery> {
    let reverse = param(query, "sort_reverse") == Some("true");
    let sort = param(query, "sort").filter(|s| !s.is_empty());
    let arrange = |mut order: Vec<usize>| {
        if let Some(field) = sort {
            let mut keyed: Vec<(Option<Value>, usize)> =
                order.iter().map(|&i| (key(i, field), i)).collect();
            keyed.sort_by(|a, b| compare(a.0.as_ref(), b.0.as_ref()));
            order = keyed.into_iter().map(|(_, i)| i).collect();
        }
        if reverse {
            order.reverse();
        }
        order
    };
    let Some((page, page_size)) = page_params(query)? else {
        return Ok(Selection {
            order: arrange((0..count).collect()),
            page: None,
        });
    };
    let mut order: Vec<usize> = (0..count).collect();
    if let Some(filter) = NameFilter::of(query)? {
        order.retain(|&i| name(i).is_some_and(|n| filter.matches(n)));
    }
    let filtered = order.len();
    let page_count = page_count(page, page_size, filtered)?;
    let order = arrange(order)
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .collect();
    Ok(Selection::paged(
        order, page, page_size, page_count, filtered, count,
    ))
}

/// The query's `page` and `page_size` (None without `page`: no paging),
/// or RabbitMQ's refusal of bad ones.
pub fn page_params(query: &[(String, String)]) -> Result<Option<(usize, usize)>, BadQuery> {
    let Some(page) = param(query, "page") else {
        return Ok(None);
    };
    let size = param(query, "page_size").unwrap_or("");
    match (
        page.parse::<usize>(),
        if size.is_empty() {
            Ok(DEFAULT_PAGE_SIZE)
        } else {
            size.parse::<usize>()
        },
    ) {
        (Ok(p), Ok(s)) if p >= 1 && (1..=MAX_PAGE_SIZE).contains(&s) => Ok(Some((p, s))),
        _ => Err(BadQuery {
            error: "invalid_pagination_parameters",
            reason: format!("Invalid pagination parameters: page number {page}, page size {size}"),
        }),
    }
}

/// The pages `filtered` items fill, or RabbitMQ's refusal of a page past
/// the last (the first page of nothing is no error).
pub fn page_count(page: usize, page_size: usize, filtered: usize) -> Result<usize, BadQuery> {
    let page_count = filtered.div_ceil(page_size);
    if page > page_count.max(1) {
        return Err(BadQuery {
            error: "page_out_of_range",
            reason: format!(
                "Page out of range, page: {page} page size: {page_size}, len: {filtered}"
            ),
        });
    }
    Ok(page_count)
}

/// The `name` filter of a paged list: a case-insensitive substring, or a
/// regex with `use_regex=true`.
#[derive(Debug)]
pub enum NameFilter {
    /// Lowercased.
    Substring(String),
    Regex(regex::Regex),
}

impl NameFilter {
    /// The query's filter (None: none, or an empty one).
    pub fn of(query: &[(String, String)]) -> Result<Option<NameFilter>, BadQuery> {
        let Some(wanted) = param(query, "name").filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        if param(query, "use_regex") != Some("true") {
            return Ok(Some(NameFilter::Substring(wanted.to_lowercase())));
        }
        regex::RegexBuilder::new(wanted)
            .size_limit(1 << 20)
            .build()
            .map(|re| Some(NameFilter::Regex(re)))
            .map_err(|e| BadQuery {
                error: "bad_request",
                reason: format!("invalid regex '{wanted}': {e}"),
            })
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameFilter::Regex(re) => re.is_match(name),
            // ASCII (most names) without lowercasing a copy of each.
            NameFilter::Substring(needle) if name.is_ascii() && needle.is_ascii() => {
                needle.is_empty()
                    || name
                        .as_bytes()
                        .windows(needle.len())
                        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
            }
            NameFilter::Substring(needle) => name.to_lowercase().contains(needle.as_str()),
        }
    }
}

impl Selection {
    /// A page of a list: the positions `order` on page `page`.
    pub fn paged(
        order: Vec<usize>,
        page: usize,
        page_size: usize,
        page_count: usize,
        filtered: usize,
        total: usize,
    ) -> Selection {
        Selection {
            order,
            page: Some(PageCounts {
                page,
                page_size,
                page_count,
                filtered,
                total,
            }),
        }
    }

    /// The answer: `items` (rendered in `order`'s order) with only the
    /// query's `columns`, in RabbitMQ's page object when paged.
    pub fn finish(self, items: Vec<Value>, query: &[(String, String)]) -> Value {
        let items = select(items, query);
        let Some(p) = self.page else {
            return Value::Array(items);
        };
        json!({
            "filtered_count": p.filtered,
            "item_count": items.len(),
            "items": items,
            "page": p.page,
            "page_count": p.page_count,
            "page_size": p.page_size,
            "total_count": p.total,
        })
    }
}

/// A dotted field of an item (`message_stats.publish`).
pub fn field<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, k| v.get(k))
}

/// The order of two sort values: a missing one first, then by kind (null,
/// booleans, numbers, strings, the rest), each kind in its own order. A
/// total order, so no sort sees an inconsistent comparison.
pub fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None => 0,
            Some(Value::Null) => 1,
            Some(Value::Bool(_)) => 2,
            Some(Value::Number(_)) => 3,
            Some(Value::String(_)) => 4,
            Some(_) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
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

    #[test]
    fn name_filter_is_case_insensitive_without_copies_and_compare_is_total() {
        let f = NameFilter::of(&parse_query("name=OrD")).unwrap().unwrap();
        assert!(f.matches("new-orders") && f.matches("ORDERS") && !f.matches("or-d"));
        assert!(f.matches("Ördnung-ord"), "non-ASCII names lowercased");
        let mut values = vec![
            Some(json!("b")),
            Some(Value::Null),
            Some(json!(2)),
            None,
            Some(json!("a")),
            Some(json!(true)),
            Some(json!(1.5)),
        ];
        values.sort_by(|a, b| compare(a.as_ref(), b.as_ref()));
        let want = [
            None,
            Some(Value::Null),
            Some(json!(true)),
            Some(json!(1.5)),
            Some(json!(2)),
            Some(json!("a")),
            Some(json!("b")),
        ];
        assert_eq!(values, want);
    }
}
