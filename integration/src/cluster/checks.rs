//! The operator's view of a node (`ipvsadm -Ln`, `ipset save`, `nft list
//! table`) and waiting until it shows what a test wants.

use super::{topology::Cluster, Family, TRIES};
use crate::{
    eventually,
    operator::{self, without_counters, IpvsTable},
};

impl Cluster {
    /// Polls `check` until it holds; panics after a bounded wait with every
    /// daemon's log and the API server's.
    pub fn wait_for(&self, what: &str, check: impl FnMut() -> bool) {
        if !eventually(TRIES, check) {
            panic!("timed out waiting for {what}\n{}", self.logs());
        }
    }

    /// `ipvsadm -Ln` on node `index`.
    pub fn ipvsadm(&self, index: usize) -> IpvsTable {
        IpvsTable::read(&self.nodes[index].netns)
    }

    /// Waits until node `index`'s virtual service `service` (`TCP
    /// 10.96.0.10:80`, single-spaced) has exactly the real servers `want`
    /// (each `addr:port weight`, e.g. `10.244.1.11:8080 1`), in any order;
    /// returns its routes (see [`routes`]).
    pub fn wait_for_real_servers(&self, index: usize, service: &str, want: &[&str]) -> Vec<String> {
        let mut want: Vec<String> = want.iter().map(|rs| real_server_line(rs)).collect();
        want.sort();
        let mut last = None;
        let held = eventually(TRIES, || {
            last = routes(&self.ipvsadm(index), service);
            last.as_ref().is_some_and(|r| r[1..] == want[..])
        });
        if !held {
            panic!(
                "timed out waiting for {service} on {} with real servers {want:?}; last seen: {last:?}\n{}",
                self.nodes[index].name,
                self.logs()
            );
        }
        last.unwrap()
    }

    /// `ipset save` on node `index` (seeds cut, sorted).
    pub fn ipset_save(&self, index: usize) -> Vec<String> {
        operator::ipset_save(&self.nodes[index].netns)
    }

    /// Waits until node `index`'s `ipset save` has a line starting with
    /// each of `prefixes` (entries carry a comment after their key).
    pub fn wait_for_set_entries(&self, index: usize, prefixes: &[&str]) {
        let name = &self.nodes[index].name;
        self.wait_for(&format!("{prefixes:?} in ipset save on {name}"), || {
            let saved = self.ipset_save(index);
            prefixes
                .iter()
                .all(|p| saved.iter().any(|line| line.starts_with(p)))
        });
    }

    /// `nft list table <family> kube-ipvs` on node `index`.
    pub fn nft_table(&self, index: usize, family: Family) -> String {
        let family = match family {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        self.nodes[index]
            .netns
            .exec(&["nft", "list", "table", family, "kube-ipvs"])
    }

    /// The rules of `chain` in node `index`'s `kube-ipvs` table of
    /// `family`, as `nft` prints them (trimmed, base chain's type line
    /// included). nft shows an xt set match as `xt match set` without the
    /// set; the sets are checked through `ipset save`.
    pub fn nft_chain(&self, index: usize, family: Family, chain: &str) -> Vec<String> {
        chain_rules(&self.nft_table(index, family), chain)
    }
}

/// The lines inside `chain NAME { … }` of `nft list table` text, trimmed;
/// empty when the chain is missing.
pub fn chain_rules(table: &str, chain: &str) -> Vec<String> {
    let header = format!("chain {chain} {{");
    table
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| line.trim() != "}")
        .map(|line| line.trim().to_owned())
        .collect()
}

/// The block of `service` (`TCP 10.96.0.10:80`, single-spaced, matched as
/// the start of the service line) in `table` with the counters cut and the
/// real servers sorted: `["TCP 10.96.0.10:80 rr", "-> 10.244.1.11:8080
/// Masq 1", …]`.
pub fn routes(table: &IpvsTable, service: &str) -> Option<Vec<String>> {
    let prefix = format!("{service} ");
    table
        .routes()
        .into_iter()
        .find(|block| block[0].starts_with(&prefix))
}

/// `addr:port weight` → `-> addr:port Masq weight` (the form of
/// [`routes`]); `[fd00::1]:8080 0` for IPv6.
pub fn real_server_line(real_server: &str) -> String {
    let (addr, weight) = real_server
        .split_once(' ')
        .unwrap_or_else(|| panic!("real server {real_server:?}: want `addr:port weight`"));
    without_counters(&format!("  -> {addr} Masq {weight}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_find_a_block_with_counters_cut() {
        let table = IpvsTable::parse(
            "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.10:80 rr
  -> 10.244.2.11:8080             Masq    0      1          0
  -> 10.244.1.11:8080             Masq    1      0          3
TCP  10.96.0.100:80 rr
",
        );
        assert_eq!(
            routes(&table, "TCP 10.96.0.10:80"),
            Some(vec![
                "TCP 10.96.0.10:80 rr".to_owned(),
                real_server_line("10.244.1.11:8080 1"),
                real_server_line("10.244.2.11:8080 0"),
            ])
        );
        assert_eq!(
            routes(&table, "TCP 10.96.0.100:80"),
            Some(vec!["TCP 10.96.0.100:80 rr".to_owned()])
        );
        assert_eq!(routes(&table, "TCP 10.96.0.1:80"), None);
        assert_eq!(
            real_server_line("[fd00::1]:8080 0"),
            "-> [fd00::1]:8080 Masq 0"
        );
    }

    #[test]
    fn chain_rules_are_the_lines_of_one_chain() {
        let table = "table ip kube-ipvs {
\tchain source-ranges {
\t\txt match set return
\t\tdrop
\t}

\tchain nat-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}
}
";
        assert_eq!(
            chain_rules(table, "source-ranges"),
            vec!["xt match set return", "drop"]
        );
        assert_eq!(
            chain_rules(table, "nat-output"),
            vec![
                "type nat hook output priority -100; policy accept;",
                "jump services"
            ]
        );
        assert!(chain_rules(table, "node-port").is_empty());
    }
}
