//! `mptun_init`'s configuration string, the runtime it starts, and `mptun_fini`.

use super::*;

// ----- configuration --------------------------------------------------------------------------

/// A parsed `mptun_init` configuration.
#[derive(Debug, Default)]
pub struct InitConfig {
    /// TUN device name, our address on it, impairment of packets sent out of it.
    pub tuns: Vec<(String, IpAddr, Option<Impairment>)>,
    pub path_manager: Option<String>,
    pub scheduler: Option<String>,
    pub congestion: Option<&'static str>,
    pub checksum: bool,
    /// Default limits of every connection (`subflows=`, `add_addr_accepted=`, `announced=`).
    pub limits: crate::pm::Limits,
    /// ADD_ADDR retransmission timeout (`add_addr_timeout=MS`).
    pub add_addr_timeout: Option<Duration>,
    /// Seed of the stack's keys, ISNs and ports (`seed=N`; default: from the OS's entropy).
    pub seed: Option<u64>,
    /// Link MTU of every address (`mtu=N`, 576..=65535; a manual instance only: the
    /// threaded runtime takes each device's MTU).
    pub mtu: Option<u16>,
    /// Our TCP window scale (`wscale=N`, 0..=14).
    pub wscale: Option<u8>,
    /// TCP timestamps (`timestamps=0|1`) and SACK (`sack=0|1`) offered.
    pub timestamps: Option<bool>,
    pub sack: Option<bool>,
    /// Addresses announced with ADD_ADDR from the start (`signal=ADDR`, repeatable; each
    /// must be one of the configured addresses): Linux's `ip mptcp endpoint add ADDR signal`.
    pub signal: Vec<IpAddr>,
}

/// Parses `"tun0=198.18.1.2,tun1=198.18.2.2,pm=manual,sched=minrtt,cc=cubic,checksum=1,
/// impair:tun1=delay=40ms+rate=10mbit,subflows=2,add_addr_accepted=0,announced=1,
/// add_addr_timeout=500"` (limits: every connection's default, Linux's meaning;
/// `add_addr_timeout` in milliseconds).
pub fn parse_config(s: &str) -> Result<InitConfig, String> {
    let mut c = InitConfig::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected KEY=VALUE"))?;
        let (k, v) = (k.trim(), v.trim());
        match k {
            "pm" => {
                crate::pm::by_name(v)?;
                c.path_manager = Some(v.to_string());
            }
            "sched" => {
                crate::sched::by_name(v).ok_or_else(|| format!("unknown scheduler {v:?}"))?;
                c.scheduler = Some(v.to_string());
            }
            "cc" => {
                c.congestion = Some(
                    crate::cc::canonical(v)
                        .ok_or_else(|| format!("unknown congestion control {v:?}"))?,
                )
            }
            "checksum" => c.checksum = v == "1" || v == "true",
            "subflows" | "add_addr_accepted" | "announced" => {
                let n: u32 = v.parse().map_err(|_| format!("{item}: not a number"))?;
                match k {
                    "subflows" => c.limits.max_subflows = n,
                    "add_addr_accepted" => c.limits.max_add_addr_accepted = n,
                    _ => c.limits.max_announced = n,
                }
            }
            "seed" => c.seed = Some(v.parse().map_err(|_| format!("{item}: not a number"))?),
            "wscale" => {
                c.wscale = Some(
                    v.parse()
                        .ok()
                        .filter(|w| *w <= 14)
                        .ok_or_else(|| format!("{item}: 0..=14 expected"))?,
                )
            }
            "timestamps" | "sack" => {
                let on = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("{item}: 0 or 1 expected")),
                };
                if k == "sack" {
                    c.sack = Some(on);
                } else {
                    c.timestamps = Some(on);
                }
            }
            "signal" => c
                .signal
                .push(v.parse().map_err(|_| format!("{item}: bad address"))?),
            "mtu" => {
                let m: u16 = v
                    .parse()
                    .ok()
                    .filter(|m| *m >= 576)
                    .ok_or_else(|| format!("{item}: an MTU of 576..=65535 expected"))?;
                c.mtu = Some(m);
            }
            "add_addr_timeout" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("{item}: milliseconds expected"))?;
                c.add_addr_timeout = Some(Duration::from_millis(ms.max(1)));
            }
            _ if k.starts_with("impair:") => {
                let dev = &k["impair:".len()..];
                let imp: Impairment = v
                    .replace('+', ",")
                    .parse()
                    .map_err(|e| format!("{item}: {e}"))?;
                let t = c
                    .tuns
                    .iter_mut()
                    .find(|t| t.0 == dev)
                    .ok_or_else(|| format!("{item}: no device {dev:?} before it"))?;
                t.2 = Some(imp);
            }
            _ => {
                if k.is_empty() || k.len() >= 16 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("{k:?} is not a device name"));
                }
                let addr: IpAddr = v.parse().map_err(|_| format!("{item}: bad address"))?;
                if c.tuns.iter().any(|t| t.0 == k || t.1 == addr) {
                    return Err(format!("{item}: device or address given twice"));
                }
                c.tuns.push((k.to_string(), addr, None));
            }
        }
    }
    if c.tuns.is_empty() {
        return Err("no device given (e.g. tun0=198.18.1.2)".into());
    }
    if let Some(a) = c.signal.iter().find(|a| !c.tuns.iter().any(|t| t.1 == **a)) {
        return Err(format!("signal={a}: not one of the configured addresses"));
    }
    Ok(c)
}

pub(super) fn conn_config(c: &InitConfig) -> ConnConfig {
    let mut cfg = ConnConfig {
        checksum: c.checksum,
        limits: c.limits,
        // the draft's model: the application decides which subflows exist
        path_manager: c.path_manager.clone().unwrap_or_else(|| "manual".into()),
        ..ConnConfig::default()
    };
    if let Some(s) = &c.scheduler {
        cfg.scheduler = s.clone();
    }
    if let Some(cc) = c.congestion {
        cfg.tcp.congestion = cc;
    }
    if let Some(t) = c.add_addr_timeout {
        cfg.add_addr_timeout = t;
    }
    if let Some(w) = c.wscale {
        cfg.tcp.window_scale = w;
    }
    if let Some(t) = c.timestamps {
        cfg.tcp.timestamps = t;
    }
    if let Some(sk) = c.sack {
        cfg.tcp.sack = sk;
    }
    cfg.local_addrs = c
        .tuns
        .iter()
        .map(|t| crate::pm::LocalAddr {
            announce: c.signal.contains(&t.1),
            ..crate::pm::LocalAddr::device(t.1)
        })
        .collect();
    cfg
}

/// Starts the global runtime over `ports` (Rust callers and tests: e.g. in-process
/// `SeqPacketDevice` links instead of TUN devices). `Err(EALREADY)` if one runs.
pub fn init_with_ports(ports: Vec<Port>, conn: ConnConfig) -> Result<(), c_int> {
    init_with_ports_seeded(ports, conn, None)
}

pub(super) fn keygen(seed: Option<u64>) -> KeyGen {
    seed.map_or_else(KeyGen::from_entropy, KeyGen::from_seed)
}

pub(super) fn init_with_ports_seeded(
    ports: Vec<Port>,
    conn: ConnConfig,
    seed: Option<u64>,
) -> Result<(), c_int> {
    let mut g = lock(&GLOBAL);
    if g.is_some() {
        return Err(libc::EALREADY);
    }
    let addrs: Vec<IpAddr> = ports.iter().flat_map(|p| p.addrs.clone()).collect();
    let stack = Stack::new(
        StackConfig {
            addrs: addrs.clone(),
            conn: conn.clone(),
            ..StackConfig::default()
        },
        keygen(seed),
    );
    let opts = RuntimeOptions {
        seed: keygen(seed.map(|s| s ^ 0x5eed)).key(),
        pcap: None,
    };
    let rt = Runtime::start_with(stack, ports, opts).map_err(|e| io_errno(&e))?;
    let ctx = Ctx::new(rt.handle().clone(), conn, addrs);
    *g = Some(Global { rt, ctx });
    Ok(())
}

/// Messages go to stderr when `RUST_LOG` asks for them: with the `env-logger` feature (on
/// by default) the C entry points install `env_logger`; without it the host program may
/// install any `log` logger itself.
pub(super) fn init_logging() {
    #[cfg(feature = "env-logger")]
    let _ = env_logger::try_init();
}

pub(super) fn init(config: &str) -> Result<(), c_int> {
    init_logging();
    let c = parse_config(config).map_err(|e| {
        tracing::warn!("mptun_init: {e}");
        libc::EINVAL
    })?;
    if c.mtu.is_some() {
        tracing::warn!("mptun_init: mtu= is for manual instances (the devices' MTUs are used)");
        return Err(libc::EINVAL);
    }
    if lock(&GLOBAL).is_some() {
        return Err(libc::EALREADY);
    }
    let mut ports = Vec::new();
    for (name, addr, imp) in &c.tuns {
        let tun = crate::io::tun::Tun::open(name).map_err(|e| {
            tracing::warn!("mptun_init: cannot open TUN device {name}: {e}");
            io_errno(&e)
        })?;
        ports.push(Port {
            device: Box::new(tun),
            addrs: vec![*addr],
            egress: imp.clone(),
            ingress: None,
        });
    }
    init_with_ports_seeded(ports, conn_config(&c), c.seed)
}

/// `int mptun_init(const char *config)`: opens the TUN devices and starts the runtime.
#[no_mangle]
pub unsafe extern "C" fn mptun_init(config: *const c_char) -> c_int {
    guard(-1, || {
        if config.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes a NUL-terminated string (checked non-NULL above).
        let s = unsafe { CStr::from_ptr(config) };
        let s = s.to_str().map_err(|_| libc::EINVAL)?;
        init(s).map(|()| 0)
    })
}

/// `int mptun_fini(void)`: closes every descriptor, waits (at most 10 s) for closed
/// connections to finish their closing handshake, stops the runtime.
#[no_mangle]
pub extern "C" fn mptun_fini() -> c_int {
    guard(-1, || {
        let ctx = runtime()?;
        for s in take_socks(&ctx) {
            close_sock(&s);
        }
        let lingering: Vec<MptcpStream> = lock(&ctx.linger).drain(..).collect();
        {
            let h = &ctx.handle;
            let deadline = h.now() + LINGER_TIMEOUT;
            for s in &lingering {
                let left = deadline.saturating_duration_since(h.now());
                if left.is_zero() {
                    break;
                }
                let _ = s.wait_all_acked(Some(left));
                let left = deadline.saturating_duration_since(h.now());
                if !left.is_zero() {
                    let _ = s.wait_closed(Some(left));
                }
            }
        }
        drop(lingering);
        let g = lock(&GLOBAL).take();
        match g {
            Some(g) => g.rt.stop().map(|()| 0).map_err(|e| io_errno(&e)),
            None => Err(libc::ENETDOWN),
        }
    })
}
