//! `kube-ipvs list`: what is programmed, with the owner of each virtual
//! service (see [`kipvs_runtime::Listing`]).

use clap::{Args, ValueEnum};
use kipvs_netlink::Counters;

/// Print the virtual services as `ipvsadm -Ln` does, with the Service port
/// owning each.
///
/// Each virtual service shows the Service port that owns it
/// (`namespace/name:port`, read from the comments of kube-ipvs's ipset
/// entries) and its kind of address. Real servers are
/// shown by address: which pod has an address only the API knows, and this
/// command does not use it. Virtual services of other programs are listed
/// with `-` for owner. Read-only; needs CAP_NET_ADMIN in the node's network
/// namespace.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// The `ipvsadm -Ln` table with owners.
    Table,
    /// `{"virtualServices": [...]}`.
    Json,
}

pub async fn run(args: &ListArgs) -> anyhow::Result<()> {
    let listing = kipvs_runtime::read_listing(Counters::default()).await?;
    match args.output {
        Output::Table => print!("{}", listing.table()),
        Output::Json => println!("{:#}", listing.json()),
    }
    Ok(())
}
