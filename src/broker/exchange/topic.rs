//! The topic exchange's trie: binding keys split into words on `.`, one trie
//! edge per word, `*` (exactly one word) and `#` (zero or more words) as
//! dedicated edges. Matching walks the routing key's words, so its cost grows
//! with the key (and the wildcards present), not with the number of bindings.
//!
//! Word splitting is RabbitMQ's (`rabbit_db_topic_exchange:split_topic_key`):
//! the empty key has *zero* words, otherwise every `.` separates two words
//! and empty words are words (`"a..b"` is `a`, ``, `b`; `"."` is two empty
//! words).

use crate::broker::binding::Destination;
use std::collections::HashMap;

const NONE: u32 = u32::MAX;

#[derive(Debug, Default)]
struct Node {
    /// Literal-word edges.
    children: HashMap<Box<str>, u32>,
    /// The `*` edge, or `NONE`.
    star: u32,
    /// The `#` edge, or `NONE`.
    hash: u32,
    /// Distinct destinations bound with the key ending at this node.
    dests: Vec<Destination>,
}

impl Node {
    fn empty() -> Node {
        Node {
            children: HashMap::new(),
            star: NONE,
            hash: NONE,
            dests: Vec::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.children.is_empty() && self.star == NONE && self.hash == NONE && self.dests.is_empty()
    }
}

/// A trie of topic binding keys. Node 0 is the root; removed nodes go to a
/// free list and are reused.
#[derive(Debug)]
pub struct TopicTrie {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Number of (key, destination) pairs stored.
    len: usize,
}

impl Default for TopicTrie {
    fn default() -> Self {
        TopicTrie::new()
    }
}

/// Splits off the first word of the words remaining. `None` means no words
/// remain; `Some(s)` means at least one word remains (possibly empty).
#[inline]
fn next_word(rest: &str) -> (&str, Option<&str>) {
    match rest.find('.') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// The words of `key` as RabbitMQ splits them (`""` has zero words).
pub fn split_words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

#[inline]
fn words_of(key: &str) -> Option<&str> {
    if key.is_empty() {
        None
    } else {
        Some(key)
    }
}

impl TopicTrie {
    pub fn new() -> TopicTrie {
        TopicTrie {
            nodes: vec![Node::empty()],
            free: Vec::new(),
            len: 0,
        }
    }

    /// Number of (binding key, destination) pairs stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(id) => {
                debug_assert!(self.nodes[id as usize].is_unused());
                id
            }
            None => {
                let id = u32::try_from(self.nodes.len()).expect("topic trie node count fits u32");
                assert!(id != NONE, "topic trie full");
                self.nodes.push(Node::empty());
                id
            }
        }
    }

    fn child(&self, node: u32, word: &str) -> u32 {
        let n = &self.nodes[node as usize];
        match word {
            "*" => n.star,
            "#" => n.hash,
            w => n.children.get(w).copied().unwrap_or(NONE),
        }
    }

    fn child_or_create(&mut self, node: u32, word: &str) -> u32 {
        let existing = self.child(node, word);
        if existing != NONE {
            return existing;
        }
        let id = self.alloc();
        let n = &mut self.nodes[node as usize];
        match word {
            "*" => n.star = id,
            "#" => n.hash = id,
            w => {
                n.children.insert(w.into(), id);
            }
        }
        id
    }

    /// Binds `dest` with binding key `key`. Adding a pair already present is
    /// a no-op.
    pub fn insert(&mut self, key: &str, dest: &Destination) {
        let mut node = 0;
        let mut rest = words_of(key);
        while let Some(r) = rest {
            let (w, tail) = next_word(r);
            node = self.child_or_create(node, w);
            rest = tail;
        }
        let dests = &mut self.nodes[node as usize].dests;
        if !dests.contains(dest) {
            dests.push(dest.clone());
            self.len += 1;
        }
    }

    /// Unbinds `dest` from `key`, pruning nodes left empty. Removing a pair
    /// that is not present is a no-op.
    pub fn remove(&mut self, key: &str, dest: &Destination) {
        // Path of (parent, word, child) edges from the root to the key's node.
        let mut path: Vec<(u32, &str, u32)> = Vec::new();
        let mut node = 0;
        let mut rest = words_of(key);
        while let Some(r) = rest {
            let (w, tail) = next_word(r);
            let c = self.child(node, w);
            if c == NONE {
                return;
            }
            path.push((node, w, c));
            node = c;
            rest = tail;
        }
        let dests = &mut self.nodes[node as usize].dests;
        let Some(i) = dests.iter().position(|d| d == dest) else {
            return;
        };
        dests.swap_remove(i);
        self.len -= 1;
        for &(parent, w, child) in path.iter().rev() {
            if !self.nodes[child as usize].is_unused() {
                break;
            }
            let p = &mut self.nodes[parent as usize];
            match w {
                "*" => p.star = NONE,
                "#" => p.hash = NONE,
                w => {
                    p.children.remove(w);
                }
            }
            self.nodes[child as usize] = Node::empty();
            self.free.push(child);
        }
    }

    /// Calls `emit` for every destination whose binding key matches
    /// `routing_key`. A destination reachable through several binding keys
    /// (or several paths, as with `#.#`) may be emitted more than once.
    pub fn matches<F: FnMut(&Destination)>(&self, routing_key: &str, emit: &mut F) {
        self.walk(0, words_of(routing_key), emit);
    }

    fn walk<F: FnMut(&Destination)>(&self, node: u32, rest: Option<&str>, emit: &mut F) {
        let n = &self.nodes[node as usize];
        match rest {
            None => {
                n.dests.iter().for_each(&mut *emit);
                // `#` also matches zero words.
                if n.hash != NONE {
                    self.walk(n.hash, None, emit);
                }
            }
            Some(r) => {
                let (w, tail) = next_word(r);
                if let Some(&c) = n.children.get(w) {
                    self.walk(c, tail, emit);
                }
                if n.star != NONE {
                    self.walk(n.star, tail, emit);
                }
                if n.hash != NONE {
                    // `#` swallows 0, 1, 2, ... of the remaining words.
                    let mut suffix = Some(r);
                    loop {
                        self.walk(n.hash, suffix, emit);
                        match suffix {
                            None => break,
                            Some(s) => suffix = next_word(s).1,
                        }
                    }
                }
            }
        }
    }
}

/// The specification of topic matching as a plain backtracking matcher over
/// word lists: used by the tests as the reference the trie must agree with.
pub fn reference_match(pattern: &str, routing_key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", prest)) => (0..=k.len()).any(|i| go(prest, &k[i..])),
            Some((&"*", prest)) => !k.is_empty() && go(prest, &k[1..]),
            Some((w, prest)) => k.first() == Some(w) && go(prest, &k[1..]),
        }
    }
    go(&split_words(pattern), &split_words(routing_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(n: &str) -> Destination {
        Destination::Queue(n.into())
    }

    fn matched(trie: &TopicTrie, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        trie.matches(key, &mut |d: &Destination| out.push(d.name().to_string()));
        out.sort();
        out.dedup();
        out
    }

    fn single(pattern: &str, key: &str) -> bool {
        let mut t = TopicTrie::new();
        t.insert(pattern, &q("q"));
        let m = !matched(&t, key).is_empty();
        assert_eq!(
            m,
            reference_match(pattern, key),
            "trie and reference disagree on {pattern:?} vs {key:?}"
        );
        m
    }

    #[test]
    fn splitting_follows_rabbitmq() {
        assert_eq!(split_words(""), Vec::<&str>::new());
        assert_eq!(split_words("a"), vec!["a"]);
        assert_eq!(split_words("."), vec!["", ""]);
        assert_eq!(split_words("a..b"), vec!["a", "", "b"]);
        assert_eq!(split_words("a."), vec!["a", ""]);
    }

    #[test]
    fn literal_words() {
        assert!(single("a.b.c", "a.b.c"));
        assert!(!single("a.b.c", "a.b"));
        assert!(!single("a.b", "a.b.c"));
        assert!(!single("a.b.c", "a.b.d"));
        assert!(single("", ""));
        assert!(!single("", "a"));
        assert!(!single("a", ""));
    }

    #[test]
    fn star_is_exactly_one_word() {
        assert!(single("*", "a"));
        assert!(!single("*", ""), "the empty key has zero words");
        assert!(!single("*", "a.b"));
        assert!(single("*.orange.*", "quick.orange.rabbit"));
        assert!(!single("*.orange.*", "orange"));
        assert!(!single("*.orange.*", "quick.orange.male.rabbit"));
        assert!(single("*.*", "."), "two empty words");
        assert!(single("a.*.b", "a..b"), "an empty word is a word");
        assert!(!single("a.*.b", "a.b"));
        assert!(single("*", "*"));
        assert!(single("stock.*.nyse", "stock.ibm.nyse"));
    }

    #[test]
    fn hash_is_zero_or_more_words() {
        for key in ["", "a", "a.b.c", ".", "..", "#", "*"] {
            assert!(single("#", key), "# matches {key:?}");
        }
        assert!(single("a.#", "a"));
        assert!(single("a.#", "a.b.c"));
        assert!(!single("a.#", "b.a"));
        assert!(single("#.a", "a"));
        assert!(single("#.a", "x.y.a"));
        assert!(!single("#.a", "a.x"));
        assert!(single("a.#.b", "a.b"));
        assert!(single("a.#.b", "a.x.y.b"));
        assert!(!single("a.#.b", "a.x.y.c"));
        assert!(single("#.#", ""));
        assert!(single("#.#", "a.b"));
        assert!(single("lazy.#", "lazy.orange.male.rabbit"));
        assert!(single("*.*.rabbit", "quick.orange.rabbit"));
        assert!(!single("*.*.rabbit", "lazy.rabbit"));
        assert!(single("#.*", "a"));
        assert!(!single("#.*", ""));
        assert!(single("*.#", "a"));
        assert!(single("a.#.#.b", "a.b"));
        assert!(single("#.b.#", "b"));
        assert!(!single("#.b.#", "a.c"));
    }

    #[test]
    fn several_bindings_and_removal_prunes() {
        let mut t = TopicTrie::new();
        t.insert("a.*", &q("q1"));
        t.insert("a.#", &q("q2"));
        t.insert("a.b", &q("q3"));
        t.insert("a.b", &q("q3"));
        assert_eq!(t.len(), 3, "duplicate pair stored once");
        assert_eq!(matched(&t, "a.b"), vec!["q1", "q2", "q3"]);
        assert_eq!(matched(&t, "a"), vec!["q2"]);
        t.remove("a.b", &q("q3"));
        t.remove("a.b", &q("q3"));
        t.remove("no.such.key", &q("q3"));
        assert_eq!(matched(&t, "a.b"), vec!["q1", "q2"]);
        t.remove("a.*", &q("q1"));
        t.remove("a.#", &q("q2"));
        assert!(t.is_empty());
        assert!(t.nodes[0].is_unused(), "root pruned back to empty");
        assert_eq!(t.free.len(), t.nodes.len() - 1, "every other node freed");
        // Freed nodes are reused.
        let before = t.nodes.len();
        t.insert("x.y", &q("q"));
        assert_eq!(t.nodes.len(), before);
        assert_eq!(matched(&t, "x.y"), vec!["q"]);
    }

    #[test]
    fn shared_prefix_survives_sibling_removal() {
        let mut t = TopicTrie::new();
        t.insert("a.b.c", &q("q1"));
        t.insert("a.b", &q("q2"));
        t.remove("a.b.c", &q("q1"));
        assert_eq!(matched(&t, "a.b"), vec!["q2"]);
        assert!(matched(&t, "a.b.c").is_empty());
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("a".to_string()),
            Just("b".to_string()),
            Just("*".to_string()),
            Just("#".to_string()),
        ]
    }

    fn key(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(word(), 0..max).prop_map(|ws| ws.join("."))
    }

    proptest! {
        #[test]
        fn trie_agrees_with_reference(
            patterns in prop::collection::vec(key(6), 1..8),
            keys in prop::collection::vec(key(7), 1..16),
        ) {
            let mut t = TopicTrie::new();
            for (i, p) in patterns.iter().enumerate() {
                t.insert(p, &q(&i.to_string()));
            }
            for k in &keys {
                let mut expected: Vec<String> = patterns
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| reference_match(p, k))
                    .map(|(i, _)| i.to_string())
                    .collect();
                expected.sort();
                prop_assert_eq!(matched(&t, k), expected, "key {:?} patterns {:?}", k, patterns);
            }
            // Removing everything leaves an empty, fully pruned trie.
            for (i, p) in patterns.iter().enumerate() {
                t.remove(p, &q(&i.to_string()));
            }
            prop_assert!(t.is_empty());
            prop_assert!(t.nodes[0].is_unused());
        }
    }
}
