//! The `mptun` command line. See `mptun --help` and README.md for the contract.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mptun::cli::{self, RunOptions, TunSpec};
use mptun::testbed::peer::{self, PeerArgs};

#[derive(Parser, Debug)]
#[command(
    name = "mptun",
    version,
    about = "Userspace Multipath TCP (RFC 8684) over Linux TUN devices"
)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Open a connection to REMOTE_IP:PORT over the given TUN devices.
    Connect {
        /// Server address.
        #[arg(value_name = "REMOTE_IP:PORT")]
        remote: SocketAddr,
        #[command(flatten)]
        common: Common,
    },
    /// Accept connections on PORT on every TUN address.
    Listen {
        /// Port to listen on.
        #[arg(long)]
        port: u16,
        /// Serve one connection, then exit.
        #[arg(long)]
        once: bool,
        /// Announce the other TUN addresses to the peer (ADD_ADDR).
        #[arg(long)]
        announce: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run the demo: mptun <-> Linux MPTCP in a namespace over two TUN devices (needs root).
    Demo {
        /// MiB to send each way.
        #[arg(long, default_value_t = 16)]
        size: u64,
    },
    /// Linux MPTCP/TCP bulk-transfer peer for tests and the demo.
    #[command(hide = true)]
    LinuxPeer(PeerArgs),
}

#[derive(Args, Debug)]
struct Common {
    /// TUN device and mptun's address on it, NAME=ADDR (repeatable, one per path).
    #[arg(long = "tun", value_name = "NAME=ADDR", required = true)]
    tuns: Vec<TunSpec>,
    /// File to send.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// File to write the received data to.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// fullmesh, ndiffports:N or manual.
    #[arg(long, default_value = "fullmesh", value_parser = cli::parse_path_manager)]
    path_manager: String,
    /// Packet scheduler.
    #[arg(long, default_value = "minrtt", value_parser = clap::builder::PossibleValuesParser::new(cli::SCHEDULERS))]
    scheduler: String,
    /// Congestion control.
    #[arg(long, default_value = "lia", value_parser = clap::builder::PossibleValuesParser::new(cli::CONGESTION))]
    congestion: String,
    /// Use the subflows over DEV as backups (repeatable).
    #[arg(long, value_name = "DEV")]
    backup: Vec<String>,
    /// Impair DEV with SPEC, e.g. tun1:delay=25ms,loss=1% (what mptun sends; DEV/in for what
    /// it receives, DEV/both for both directions; repeatable).
    #[arg(long, value_name = "DEV:SPEC", value_parser = cli::parse_impair)]
    impair: Vec<(String, String)>,
    /// Write every packet mptun sends and receives to this pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Take DEV down or up MS milliseconds after start: DEV:down@MS, DEV:up@MS (repeatable).
    #[arg(long = "link", value_name = "DEV:down|up@MS", value_parser = cli::parse_link)]
    links: Vec<(String, bool, std::time::Duration)>,
    /// Abort a subflow whose data stays unacknowledged this many milliseconds (TCP user
    /// timeout); the path manager may then re-create it.
    #[arg(long, value_name = "MS")]
    user_timeout: Option<u64>,
    /// Plain TCP, no MPTCP options.
    #[arg(long)]
    no_mptcp: bool,
    /// Request DSS checksums.
    #[arg(long)]
    checksum: bool,
}

impl Common {
    fn into_options(self) -> RunOptions {
        RunOptions {
            tuns: self.tuns,
            input: self.input,
            output: self.output,
            path_manager: self.path_manager,
            scheduler: self.scheduler,
            congestion: self.congestion,
            backup: self.backup,
            impair: self.impair,
            pcap: self.pcap,
            links: self.links,
            user_timeout: self.user_timeout.map(std::time::Duration::from_millis),
            mptcp: !self.no_mptcp,
            checksum: self.checksum,
            ..RunOptions::default()
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_micros()
        .init();
}

fn print_outcome(result: Result<cli::Summary, String>) -> ExitCode {
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mptun: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Cli::parse();
    init_logging(args.verbose);
    match args.command {
        Cmd::Connect { remote, common } => {
            let mut opts = common.into_options();
            opts.remote = Some(remote);
            print_outcome(cli::run_connect(&opts))
        }
        Cmd::Listen {
            port,
            once,
            announce,
            common,
        } => {
            let mut opts = common.into_options();
            opts.port = Some(port);
            opts.once = once;
            opts.announce = announce;
            print_outcome(cli::run_listen(&opts))
        }
        Cmd::Demo { size } => {
            let exe = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("mptun demo: cannot find my own executable: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match mptun::testbed::demo::run_demo(&exe, size) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mptun demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::LinuxPeer(p) => match peer::run_peer(&p) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mptun linux-peer: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connect_contract_parses() {
        let c = Cli::try_parse_from([
            "mptun",
            "connect",
            "--tun",
            "tun0=198.18.1.2",
            "--tun",
            "tun1=198.18.2.2",
            "198.18.1.1:5201",
            "--input",
            "a",
            "--output",
            "b",
            "--scheduler",
            "blest",
            "--impair",
            "tun1:delay=25ms,loss=1%",
            "--backup",
            "tun1",
            "--no-mptcp",
            "-vv",
        ])
        .unwrap();
        assert_eq!(c.verbose, 2);
        let Cmd::Connect { remote, common } = c.command else {
            panic!("not connect")
        };
        assert_eq!(remote.port(), 5201);
        let o = common.into_options();
        assert_eq!(o.tuns.len(), 2);
        assert_eq!(o.tuns[1].name, "tun1");
        assert_eq!(o.scheduler, "blest");
        assert_eq!(o.path_manager, "fullmesh");
        assert_eq!(o.impair, vec![("tun1".into(), "delay=25ms,loss=1%".into())]);
        assert!(!o.mptcp);
    }

    #[test]
    fn listen_contract_parses_and_rejects_bad_values() {
        let c = Cli::try_parse_from([
            "mptun",
            "listen",
            "--tun",
            "tun0=198.18.1.2",
            "--port",
            "5201",
            "--once",
            "--announce",
            "--path-manager",
            "ndiffports:2",
        ])
        .unwrap();
        let Cmd::Listen {
            port,
            once,
            announce,
            common,
        } = c.command
        else {
            panic!("not listen")
        };
        assert_eq!((port, once, announce), (5201, true, true));
        assert_eq!(common.path_manager, "ndiffports:2");
        // Missing --tun, bad tun spec, unknown scheduler, bad path manager.
        for bad in [
            &["mptun", "listen", "--port", "1"][..],
            &["mptun", "listen", "--tun", "tun0", "--port", "1"],
            &[
                "mptun",
                "listen",
                "--tun",
                "t=1.1.1.1",
                "--port",
                "1",
                "--scheduler",
                "x",
            ],
            &[
                "mptun",
                "listen",
                "--tun",
                "t=1.1.1.1",
                "--port",
                "1",
                "--path-manager",
                "y",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} parsed");
        }
    }
}
