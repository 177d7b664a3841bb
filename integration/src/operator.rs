//! The operator's view of kernel state: what `ipvsadm -Ln`, `ipset save` and
//! `ip -o addr show kube-ipvs0` print, normalised only where the output is
//! not deterministic (service order, the random set `initval`, the link
//! index, per-connection counters) so tests can compare it as exact text.

use crate::TestNetns;

/// `ipvsadm -Ln`: the three header lines, and one block per virtual service
/// (its line, then its real servers), blocks and real servers sorted (the
/// kernel lists services in hash order). Lines are kept as printed, only
/// trailing blanks cut.
#[derive(Debug, PartialEq, Eq)]
pub struct IpvsTable {
    pub header: Vec<String>,
    pub blocks: Vec<Vec<String>>,
}

impl IpvsTable {
    pub fn parse(text: &str) -> IpvsTable {
        let mut header = Vec::new();
        let mut blocks: Vec<Vec<String>> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end().to_owned();
            if n < 3 {
                header.push(line);
            } else if line.is_empty() {
                continue;
            } else if line.starts_with("  ->") {
                blocks
                    .last_mut()
                    .expect("real server before service")
                    .push(line);
            } else {
                blocks.push(vec![line]);
            }
        }
        for block in &mut blocks {
            block[1..].sort();
        }
        blocks.sort();
        IpvsTable { header, blocks }
    }

    /// `ipvsadm -Ln` in `netns`, parsed.
    pub fn read(netns: &TestNetns) -> IpvsTable {
        IpvsTable::parse(&netns.exec(&["ipvsadm", "-Ln"]))
    }

    /// The blocks through [`without_counters`], sorted again: traffic
    /// leaves connections in TIME_WAIT behind (counted as InActConn), so
    /// tests that send requests compare only the routing.
    pub fn routes(&self) -> Vec<Vec<String>> {
        let mut routes: Vec<Vec<String>> = self
            .blocks
            .iter()
            .map(|block| block.iter().map(|line| without_counters(line)).collect())
            .collect();
        for block in &mut routes {
            block[1..].sort();
        }
        routes.sort();
        routes
    }

    /// The block of the service whose line starts with `service`
    /// (`TCP  10.96.0.10:80`).
    pub fn block(&self, service: &str) -> Option<&Vec<String>> {
        self.blocks.iter().find(|b| b[0].starts_with(service))
    }
}

/// An `ipvsadm -Ln` line with its fields single-spaced and, on a real
/// server line (`-> addr:port Forward Weight ActiveConn InActConn`), the
/// two connection counters cut: `-> 10.244.1.2:8080 Masq 1`.
pub fn without_counters(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.first() == Some(&"->") {
        fields[..fields.len().min(4)].join(" ")
    } else {
        fields.join(" ")
    }
}

/// Lines of an expected block, owned.
pub fn lines(block: &[&str]) -> Vec<String> {
    block.iter().map(|s| s.to_string()).collect()
}

/// `ipset save` text with each set's random hash seed (` initval 0x…`)
/// cut, lines sorted (hash members are listed in hash order).
pub fn ipset_save_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| match line.find(" initval 0x") {
            Some(at) => {
                let rest = &line[at + " initval ".len()..];
                let after = rest.find(' ').map_or("", |i| &rest[i..]);
                format!("{}{after}", &line[..at])
            }
            None => line.to_owned(),
        })
        .collect();
    lines.sort();
    lines
}

/// `ipset save` in `netns`, through [`ipset_save_lines`].
pub fn ipset_save(netns: &TestNetns) -> Vec<String> {
    ipset_save_lines(&netns.exec(&["ipset", "save"]))
}

/// `ip -o addr show` text without the leading link index (`5:`),
/// whitespace squeezed, lines sorted.
pub fn addr_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|line| !line.is_empty())
        .collect();
    lines.sort();
    lines
}

/// `ip -o addr show kube-ipvs0` in `netns` through [`addr_lines`]
/// (`kube-ipvs0 inet 10.96.0.10/32 scope global kube-ipvs0\ valid_lft …`);
/// empty when the link is missing.
pub fn kube_ipvs0_addresses(netns: &TestNetns) -> Vec<String> {
    let (ok, out) = netns.try_exec(&["ip", "-o", "addr", "show", "kube-ipvs0"]);
    if !ok {
        return Vec::new();
    }
    addr_lines(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPVSADM: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.96.0.53:53 rr
  -> 10.244.1.3:5353              Masq    1      0          0
TCP  10.96.0.10:80 rr
  -> 10.244.1.3:8080              Masq    1      2          7
  -> 10.244.1.2:8080              Masq    1      0          0
";

    #[test]
    fn ipvsadm_blocks_are_sorted_and_routes_drop_the_counters() {
        let table = IpvsTable::parse(IPVSADM);
        assert_eq!(table.header.len(), 3);
        assert_eq!(
            table.blocks,
            vec![
                lines(&[
                    "TCP  10.96.0.10:80 rr",
                    "  -> 10.244.1.2:8080              Masq    1      0          0",
                    "  -> 10.244.1.3:8080              Masq    1      2          7",
                ]),
                lines(&[
                    "UDP  10.96.0.53:53 rr",
                    "  -> 10.244.1.3:5353              Masq    1      0          0",
                ]),
            ]
        );
        assert_eq!(
            table.routes(),
            vec![
                lines(&[
                    "TCP 10.96.0.10:80 rr",
                    "-> 10.244.1.2:8080 Masq 1",
                    "-> 10.244.1.3:8080 Masq 1",
                ]),
                lines(&["UDP 10.96.0.53:53 rr", "-> 10.244.1.3:5353 Masq 1"]),
            ]
        );
        assert_eq!(table.block("UDP  10.96.0.53:53"), Some(&table.blocks[1]));
    }

    #[test]
    fn ipset_save_loses_only_the_seed() {
        let saved = "\
create B hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1a2b3c4d
add B 10.0.0.1
create A bitmap:port range 0-65535
";
        assert_eq!(
            ipset_save_lines(saved),
            vec![
                "add B 10.0.0.1",
                "create A bitmap:port range 0-65535",
                "create B hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12",
            ]
        );
    }

    #[test]
    fn addr_lines_lose_the_link_index() {
        let text = "7: kube-ipvs0    inet 10.96.0.53/32 scope global kube-ipvs0\\       valid_lft forever preferred_lft forever\n\
                    7: kube-ipvs0    inet 10.96.0.10/32 scope global kube-ipvs0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            addr_lines(text),
            vec![
                "kube-ipvs0 inet 10.96.0.10/32 scope global kube-ipvs0\\ valid_lft forever preferred_lft forever",
                "kube-ipvs0 inet 10.96.0.53/32 scope global kube-ipvs0\\ valid_lft forever preferred_lft forever",
            ]
        );
    }
}
