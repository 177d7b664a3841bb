//! `kipvs-bench`: the pieces of `make bench` (see hack/bench/run.sh).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use kipvs_bench::{
    cluster, guest, plot,
    report::{self, PlannerFigures, Provenance},
    results::{criterion_mean_ns, RunResults},
    Result,
};

#[derive(Debug, Parser)]
#[command(name = "kipvs-bench")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write the manifests of N services into DIR (for trying the daemon by hand).
    Generate {
        #[arg(long)]
        services: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// In the VM: measure every size, writing RESULTS/raw.json.
    Guest {
        /// Sizes, space- or comma-separated.
        #[arg(long, default_value = "100 1000 10000")]
        sizes: String,
        #[arg(long)]
        results: PathBuf,
        #[arg(long, default_value = "/tmp/kipvs-bench")]
        work: PathBuf,
        /// The kube-ipvs binary.
        #[arg(long)]
        daemon: PathBuf,
        /// The longest wait for one sync line, seconds.
        #[arg(long, default_value_t = 2400)]
        timeout: u64,
    },
    /// In the reference namespace (run by `guest`): time the kernel's tools.
    Reference {
        #[arg(long)]
        work: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// On the host: raw.json (+ criterion's planner figures) → report.md and scaling.svg.
    Report {
        #[arg(long)]
        raw: PathBuf,
        /// criterion's output directory (target/criterion), if the planner bench ran.
        #[arg(long)]
        criterion: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "")]
        commit: String,
        #[arg(long, default_value = "")]
        host: String,
        #[arg(long, default_value = "make bench")]
        command: String,
        /// A remark printed under the header (say, what else loaded the machine).
        #[arg(long, default_value = "")]
        note: String,
    },
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kipvs-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse_sizes(text: &str) -> Vec<usize> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn run(args: Args) -> Result<()> {
    match args.command {
        Cmd::Generate { services, out } => {
            std::fs::create_dir_all(&out)?;
            cluster::write_manifests(&out, services)?;
            Ok(())
        }
        Cmd::Guest {
            sizes,
            results,
            work,
            daemon,
            timeout,
        } => {
            let mut sizes = parse_sizes(&sizes);
            sizes.sort_unstable();
            if sizes.is_empty()
                || sizes
                    .iter()
                    .any(|n| !(2..=cluster::MAX_SERVICES).contains(n))
            {
                return Err(kipvs_bench::BenchError::Check(format!(
                    "sizes must be between 2 and {}",
                    cluster::MAX_SERVICES
                )));
            }
            guest::run(&guest::GuestOptions {
                sizes,
                results,
                work,
                daemon,
                timeout: Duration::from_secs(timeout),
            })
        }
        Cmd::Reference { work, out } => guest::reference(&work, &out),
        Cmd::Report {
            raw,
            criterion,
            out,
            commit,
            host,
            command,
            note,
        } => {
            let run = RunResults::read(&raw)?;
            let planner: Vec<(usize, PlannerFigures)> = run
                .sizes
                .iter()
                .map(|s| {
                    let n = s.services.to_string();
                    let get = |group: &str| {
                        criterion
                            .as_deref()
                            .and_then(|dir| criterion_mean_ns(dir, group, &n))
                            .map(|ns| ns / 1e6)
                    };
                    (
                        s.services,
                        PlannerFigures {
                            noop_ms: get("planner_noop"),
                            change_ms: get("planner_one_endpoint"),
                            incremental_ms: get("planner_incremental"),
                            cold_plan_ms: get("planner_cold_plan"),
                        },
                    )
                })
                .collect();
            let provenance = Provenance {
                commit,
                host,
                command,
                note,
            };
            std::fs::create_dir_all(&out)?;
            let text = report::markdown(&run, &planner, &provenance);
            std::fs::write(out.join("report.md"), &text)?;
            let subtitle = format!(
                "VM: {} CPUs, TCG, Linux {}",
                run.machine.cpus, run.machine.kernel
            );
            plot::write_svg(&run, &out.join("scaling.svg"), &subtitle)?;
            print!("{text}");
            Ok(())
        }
    }
}
