//! Policies on exchanges: which policy applies to each exchange (the
//! highest-priority one whose `apply-to` is `exchanges` or `all` and whose
//! pattern matches, `queue_args::policy::select`) and what it sets there:
//! `alternate-exchange`, used only when the exchange has no
//! `alternate-exchange` argument (`rabbit_policy:get_arg/3`: the argument
//! wins). The topology keeps its own copy of the policies so that an
//! exchange declared later gets its policy at once; `set_policies`
//! re-selects for every exchange when the policies change.

use super::Topology;
use crate::broker::queue_args::policy::{select, ApplyTo, Policy, PolicyTarget};
use crate::protocol::types::ShortStr;

/// The policy applied to one exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangePolicy {
    /// The policy's name (`rabbitmqctl list_exchanges name policy`).
    pub name: String,
    /// Its `alternate-exchange`, when that is a valid exchange name.
    pub alternate: Option<ShortStr>,
}

impl Topology {
    /// The policies changed (set or cleared): keeps those that can apply
    /// to exchanges, in order (the order decides between equal
    /// priorities), and re-selects the policy of every exchange.
    pub fn set_policies(&mut self, policies: &[Policy]) {
        self.policies = policies
            .iter()
            .filter(|p| p.apply_to != ApplyTo::Queues)
            .cloned()
            .collect();
        let names: Vec<ShortStr> = self.exchanges.keys().cloned().collect();
        for name in names {
            let policy = self.policy_for(&name);
            if let Some(x) = self.exchanges.get_mut(&name) {
                x.policy = policy;
            }
        }
    }

    /// The policy that applies to an exchange named `name`.
    pub(super) fn policy_for(&self, name: &str) -> Option<ExchangePolicy> {
        let p = select(&self.policies, name, PolicyTarget::Exchange)?;
        Some(ExchangePolicy {
            name: p.name.clone(),
            alternate: p
                .definition
                .alternate_exchange
                .clone()
                .and_then(ShortStr::from_bytes),
        })
    }

    /// The name of the policy applied to exchange `name`, if any.
    pub fn exchange_policy(&self, name: &str) -> Option<&str> {
        Some(self.exchanges.get(name)?.policy.as_ref()?.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::broker::queue_args::policy::{ApplyTo, Policy, PolicyDefinition};
    use crate::broker::topology::testkit::*;

    fn ae_policy(name: &str, pattern: &str, apply_to: ApplyTo, ae: &str, prio: i64) -> Policy {
        let def = table(&[("alternate-exchange", s(ae))]);
        let definition = PolicyDefinition::parse(&def).unwrap();
        Policy::new(name, pattern, apply_to, prio, definition).unwrap()
    }

    #[test]
    fn a_policy_sets_the_alternate_exchange_and_the_argument_wins() {
        let mut t = Topology::new();
        declare(&mut t, "ae-pol", "fanout").unwrap();
        declare(&mut t, "ae-arg", "fanout").unwrap();
        bind(&mut t, "ae-pol", q("by-policy"), "");
        bind(&mut t, "ae-arg", q("by-arg"), "");
        declare(&mut t, "main-before", "direct").unwrap();
        t.set_policies(&[ae_policy("p", "^main", ApplyTo::Exchanges, "ae-pol", 0)]);
        declare(&mut t, "main-after", "direct").unwrap();
        declare_ae(&mut t, "main-arg", "direct", "ae-arg");
        assert_eq!(route(&t, "main-before", "k"), ["by-policy"]);
        assert_eq!(route(&t, "main-after", "k"), ["by-policy"]);
        assert_eq!(route(&t, "main-arg", "k"), ["by-arg"]);
        assert_eq!(t.exchange_policy("main-after"), Some("p"));
        assert_eq!(t.exchange_policy("ae-pol"), None);
        t.set_policies(&[]);
        assert_eq!(route(&t, "main-before", "k"), Vec::<String>::new());
        assert_eq!(t.exchange_policy("main-after"), None);
    }

    #[test]
    fn queue_policies_do_not_apply_and_the_higher_priority_wins() {
        let mut t = Topology::new();
        declare(&mut t, "ae1", "fanout").unwrap();
        declare(&mut t, "ae2", "fanout").unwrap();
        bind(&mut t, "ae1", q("q1"), "");
        bind(&mut t, "ae2", q("q2"), "");
        declare(&mut t, "x", "direct").unwrap();
        t.set_policies(&[
            ae_policy("queues-only", "^x$", ApplyTo::Queues, "ae1", 9),
            ae_policy("low", "^x$", ApplyTo::All, "ae1", 1),
            ae_policy("high", "^x$", ApplyTo::Exchanges, "ae2", 2),
        ]);
        assert_eq!(route(&t, "x", "k"), ["q2"]);
        assert_eq!(t.exchange_policy("x"), Some("high"));
    }
}
