//! Rule tests. Each names the rule it guards; breaking that rule in `rmp`,
//! `ghcb_msr`, `psc`, `vmsa` or `backend` makes the test fail.

mod flows;
mod host_requests;
mod parsers;
mod rmp_rules;
