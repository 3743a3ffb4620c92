//! The `mptun` command line. See `mptun --help` and README.md for the contract.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mptun::cli::{self, ForwardSpec, ProxyOptions, RunOptions, Target, TunSpec};
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
        /// Relay every accepted connection to this TCP service (kernel TCP; a host name is
        /// resolved for each connection) instead of --input/--output.
        #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["input", "output"])]
        forward: Option<Target>,
        #[command(flatten)]
        common: Common,
    },
    /// Carry unmodified applications over MPTCP: a SOCKS5 proxy and port forwards on kernel
    /// TCP, each accepted connection carried over its own MPTCP connection.
    Proxy {
        /// Serve SOCKS5 (RFC 1928: CONNECT, no authentication) on ADDR:PORT, e.g.
        /// 127.0.0.1:1080.
        #[arg(long, value_name = "ADDR:PORT", required_unless_present = "forwards")]
        socks: Option<SocketAddr>,
        /// Accept TCP on LPORT (127.0.0.1, or ADDR) and carry it to HOST:PORT (repeatable).
        #[arg(long = "forward", value_name = "[ADDR:]LPORT=HOST:PORT")]
        forwards: Vec<ForwardSpec>,
        /// Most connections relayed at once; more wait in the listen backlog.
        #[arg(long, default_value_t = 256)]
        max_connections: usize,
        /// Give up an MPTCP handshake to a destination after MS milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 30_000)]
        connect_timeout: u64,
        #[command(flatten)]
        paths: Paths,
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

/// `connect` and `listen`: the paths and the data.
#[derive(Args, Debug)]
struct Common {
    /// File to send; `-` relays stdin as it arrives.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// File to write the received data to; `-` writes it to stdout as it arrives (the
    /// summary then goes to stderr), e.g. for ssh's ProxyCommand.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Send at most BYTES of --input, then abort the connection: every subflow reset, with
    /// MP_FASTCLOSE (RFC 8684 3.5), as Linux does on a close with SO_LINGER 0.
    #[arg(long, value_name = "BYTES", requires = "input")]
    abort_after: Option<u64>,
    #[command(flatten)]
    paths: Paths,
}

/// The TUN devices and multipath options, shared by `connect`, `listen` and `proxy`.
#[derive(Args, Debug)]
struct Paths {
    /// TUN device and mptun's address on it, NAME=ADDR (repeatable, one per path).
    #[arg(long = "tun", value_name = "NAME=ADDR", required = true)]
    tuns: Vec<TunSpec>,
    /// fullmesh (every local address to every peer address), kernel (Linux's endpoint
    /// semantics: `--endpoint 0:change:ADDR:subflow[:fullmesh]`), ndiffports:N or manual.
    #[arg(long, default_value = "fullmesh", value_parser = cli::parse_path_manager)]
    path_manager: String,
    /// Packet scheduler: minrtt, roundrobin, redundant, blest, ecf (or a name a program registered with `mptun::sched::register`).
    #[arg(long, default_value = "minrtt", value_parser = cli::parse_scheduler)]
    scheduler: String,
    /// Congestion control: reno, cubic, lia, olia, balia (or a registered name).
    #[arg(long, default_value = "lia", value_parser = cli::parse_congestion)]
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
    /// Limits of every connection, Linux's `ip mptcp limits` meaning:
    /// subflows=N,add_addr_accepted=M,announced=K (any subset; default 8 each).
    /// add_addr_accepted=0 ignores the peer's announcements (they are still echoed).
    #[arg(long, value_name = "SPEC", value_parser = cli::parse_limits)]
    limits: Option<mptun::pm::Limits>,
    /// ADD_ADDR retransmission timeout in milliseconds (Linux's add_addr_timeout; 2000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    add_addr_timeout: Option<u64>,
    /// Change an endpoint MS milliseconds after start, like `ip mptcp endpoint`:
    /// MS:add:ADDR[:signal][:subflow][:fullmesh][:backup][:port=N] (or change: the flags
    /// given replace the old ones; signal announces the address, with port=N in the
    /// ADD_ADDR; backup sends MP_PRIO; subflow and fullmesh are Linux's flags, followed by
    /// --path-manager kernel) or MS:del:ADDR (REMOVE_ADDR, its subflows closed). MS 0 is
    /// configuration, in force before the first connection. ADDR must be a --tun address
    /// (repeatable).
    #[arg(long = "endpoint", value_name = "MS:VERB:ADDR[:FLAGS]", value_parser = cli::parse_endpoint)]
    endpoints: Vec<(std::time::Duration, cli::EndpointAction)>,
    /// Plain TCP, no MPTCP options.
    #[arg(long)]
    no_mptcp: bool,
    /// Request DSS checksums.
    #[arg(long)]
    checksum: bool,
    /// Do not use the TUN devices' segmentation and checksum offload (virtio-net header):
    /// one write per segment, one read per segment, checksums computed by mptun.
    #[arg(long)]
    no_offload: bool,
    /// Print summaries as JSON objects, one per line (with per-subflow local, remote, sent,
    /// received, rtt, cwnd, retrans, state); --stats-interval lines too.
    #[arg(long)]
    json: bool,
    /// Print every open connection's progress on stderr every MS milliseconds: rates and
    /// per-subflow rtt, cwnd, retransmissions, state (at least 10).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..))]
    stats_interval: Option<u64>,
}

impl Common {
    fn into_options(self) -> RunOptions {
        RunOptions {
            input: self.input,
            output: self.output,
            abort_after: self.abort_after,
            ..self.paths.into_options()
        }
    }
}

impl Paths {
    fn into_options(self) -> RunOptions {
        RunOptions {
            tuns: self.tuns,
            path_manager: self.path_manager,
            scheduler: self.scheduler,
            congestion: self.congestion,
            backup: self.backup,
            impair: self.impair,
            pcap: self.pcap,
            links: self.links,
            user_timeout: self.user_timeout.map(std::time::Duration::from_millis),
            limits: self.limits.unwrap_or_default(),
            endpoints: self.endpoints,
            add_addr_timeout: self.add_addr_timeout.map(std::time::Duration::from_millis),
            mptcp: !self.no_mptcp,
            checksum: self.checksum,
            offload: !self.no_offload,
            json: self.json,
            stats_interval: self.stats_interval.map(std::time::Duration::from_millis),
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// Prints the summary on stdout, or on stderr when stdout carried the data (`--output -`).
fn print_outcome(result: Result<cli::Summary, String>, opts: &RunOptions) -> ExitCode {
    match result {
        Ok(summary) => {
            let line = if opts.json {
                summary.to_json()
            } else {
                summary.to_string()
            };
            if opts.output.as_deref().is_some_and(cli::is_stdio) {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
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
            print_outcome(cli::run_connect(&opts), &opts)
        }
        Cmd::Listen {
            port,
            once,
            announce,
            forward,
            common,
        } => {
            let mut opts = common.into_options();
            opts.port = Some(port);
            opts.once = once;
            opts.announce = announce;
            opts.forward = forward;
            print_outcome(cli::run_listen(&opts), &opts)
        }
        Cmd::Proxy {
            socks,
            forwards,
            max_connections,
            connect_timeout,
            paths,
        } => {
            let opts = ProxyOptions {
                run: paths.into_options(),
                socks,
                forwards,
                max_connections,
                connect_timeout: std::time::Duration::from_millis(connect_timeout),
            };
            match cli::run_proxy(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mptun: {e}");
                    ExitCode::FAILURE
                }
            }
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
            ..
        } = c.command
        else {
            panic!("not listen")
        };
        assert_eq!((port, once, announce), (5201, true, true));
        assert_eq!(common.paths.path_manager, "ndiffports:2");
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

    #[test]
    fn proxy_and_forward_contracts_parse() {
        let c = Cli::try_parse_from([
            "mptun",
            "proxy",
            "--tun",
            "tun0=198.18.1.2",
            "--tun",
            "tun1=198.18.2.2",
            "--socks",
            "127.0.0.1:1080",
            "--forward",
            "7000=198.18.1.1:7",
            "--forward",
            "0.0.0.0:2222=host.test:22",
            "--scheduler",
            "redundant",
            "--connect-timeout",
            "500",
        ])
        .unwrap();
        let Cmd::Proxy {
            socks,
            forwards,
            max_connections,
            connect_timeout,
            paths,
        } = c.command
        else {
            panic!("not proxy")
        };
        assert_eq!(socks, Some("127.0.0.1:1080".parse().unwrap()));
        assert_eq!(forwards.len(), 2);
        assert_eq!(forwards[1].target, Target::Name("host.test".into(), 22));
        assert_eq!((max_connections, connect_timeout), (256, 500));
        let o = paths.into_options();
        assert_eq!((o.tuns.len(), o.scheduler.as_str()), (2, "redundant"));
        // forward only is enough; neither is an error; --input is not a proxy option
        assert!(Cli::try_parse_from([
            "mptun",
            "proxy",
            "--tun",
            "t=1.1.1.1",
            "--forward",
            "1=h:2"
        ])
        .is_ok());
        assert!(Cli::try_parse_from(["mptun", "proxy", "--tun", "t=1.1.1.1"]).is_err());
        assert!(Cli::try_parse_from([
            "mptun",
            "proxy",
            "--tun",
            "t=1.1.1.1",
            "--socks",
            "127.0.0.1:1",
            "--input",
            "x"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["mptun", "proxy", "--tun", "t=1.1.1.1", "--forward", "1=h"])
                .is_err()
        );

        let c = Cli::try_parse_from([
            "mptun",
            "listen",
            "--tun",
            "t=1.1.1.1",
            "--port",
            "22",
            "--forward",
            "127.0.0.1:22",
        ])
        .unwrap();
        let Cmd::Listen { forward, .. } = c.command else {
            panic!("not listen")
        };
        assert_eq!(forward, Some(Target::Addr("127.0.0.1:22".parse().unwrap())));
        // --forward relays: no --input/--output with it
        assert!(Cli::try_parse_from([
            "mptun",
            "listen",
            "--tun",
            "t=1.1.1.1",
            "--port",
            "22",
            "--forward",
            "h:22",
            "--output",
            "x",
        ])
        .is_err());
        // connect as a pipe
        let c = Cli::try_parse_from([
            "mptun",
            "connect",
            "--tun",
            "t=1.1.1.1",
            "1.1.1.2:22",
            "--input",
            "-",
            "--output",
            "-",
        ])
        .unwrap();
        let Cmd::Connect { common, .. } = c.command else {
            panic!("not connect")
        };
        let o = common.into_options();
        assert!(o.input.as_deref().is_some_and(cli::is_stdio));
        assert!(o.output.as_deref().is_some_and(cli::is_stdio));
    }
}
