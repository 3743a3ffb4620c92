//! `--stats-interval MS`: one progress line per open connection on stderr every MS
//! milliseconds (JSON lines with `--json`), from a thread that reads the stack's state.
//!
//! Text: `stats t=2.000s conn=0.1 acked=.. received=.. tx=..Mbit/s rx=..Mbit/s mptcp=true
//! subflows=2 sf0=LOCAL->REMOTE,sent=..,received=..,rtt=..ms,cwnd=..,retrans=..,state=..`
//!
//! JSON: `{"type":"stats","t":2.0,"conn":"0.1","acked":N,"received":N,"tx_mbps":X,
//! "rx_mbps":X,"mptcp":true,"subflows":[{...as in the summary...}]}`
//!
//! `acked` is what the peer acknowledged at the data level, `received` what arrived in
//! order; `tx`/`rx` are their rates since the previous line of that connection.

use crate::api::StackHandle;
use crate::cli::{json_f64, json_str, RunOptions, SubflowSummary};
use crate::stack::ConnId;
use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

/// One connection's progress at one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnStats {
    /// Seconds since the reporter started.
    pub t: f64,
    /// The connection id without the `conn#` prefix (`0.1`).
    pub conn: String,
    pub acked: u64,
    pub received: u64,
    pub tx_mbps: f64,
    pub rx_mbps: f64,
    pub mptcp: bool,
    pub subflows: Vec<SubflowSummary>,
}

impl ConnStats {
    /// The text line (see the module documentation).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "stats t={:.3}s conn={} acked={} received={} tx={:.1}Mbit/s rx={:.1}Mbit/s mptcp={} subflows={}",
            self.t,
            self.conn,
            self.acked,
            self.received,
            self.tx_mbps,
            self.rx_mbps,
            self.mptcp,
            self.subflows.len()
        );
        for (i, sf) in self.subflows.iter().enumerate() {
            out.push_str(&format!(" sf{i}={sf}"));
        }
        out
    }

    /// The JSON line (see the module documentation).
    pub fn to_json(&self) -> String {
        let sfs: Vec<String> = self.subflows.iter().map(SubflowSummary::to_json).collect();
        format!(
            "{{\"type\":\"stats\",\"t\":{},\"conn\":{},\"acked\":{},\"received\":{},\"tx_mbps\":{},\"rx_mbps\":{},\"mptcp\":{},\"subflows\":[{}]}}",
            json_f64(self.t, 3),
            json_str(&self.conn),
            self.acked,
            self.received,
            json_f64(self.tx_mbps, 3),
            json_f64(self.rx_mbps, 3),
            self.mptcp,
            sfs.join(",")
        )
    }
}

/// Prints progress lines until dropped.
#[derive(Debug)]
pub struct StatsReporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StatsReporter {
    /// Starts reporting if `opts.stats_interval` is set (`None` otherwise).
    pub fn start(handle: &StackHandle, opts: &RunOptions) -> Option<StatsReporter> {
        let interval = opts.stats_interval.filter(|d| !d.is_zero())?;
        let json = opts.json;
        let handle = handle.clone();
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mptun-stats".into())
            .spawn(move || {
                let start = Instant::now();
                let mut last: HashMap<ConnId, (Instant, u64, u64)> = HashMap::new();
                let mut next = start + interval;
                loop {
                    match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    next += interval;
                    let lines = sample(&handle, start, &mut last);
                    let mut err = std::io::stderr().lock();
                    for l in lines {
                        let _ = writeln!(err, "{}", if json { l.to_json() } else { l.to_text() });
                    }
                }
            })
            .ok()?;
        Some(StatsReporter {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for StatsReporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One [`ConnStats`] per open connection; `last` keeps each connection's previous sample
/// (time, acked, received) for the rates.
fn sample(
    handle: &StackHandle,
    start: Instant,
    last: &mut HashMap<ConnId, (Instant, u64, u64)>,
) -> Vec<ConnStats> {
    let now = Instant::now();
    let t = now.duration_since(start).as_secs_f64();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    handle.with_stack(|s| {
        let ids: Vec<ConnId> = s.connections().collect();
        for id in ids {
            let Some(c) = s.connection(id) else { continue };
            if c.is_closed() {
                continue;
            }
            let info = c.info();
            let (t0, acked0, recv0) = last.get(&id).copied().unwrap_or((start, 0, 0));
            let secs = now.duration_since(t0).as_secs_f64().max(1e-6);
            let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 * 8.0 / secs / 1e6;
            out.push(ConnStats {
                t,
                conn: id.to_string().trim_start_matches("conn#").to_string(),
                acked: info.bytes_acked,
                received: info.bytes_received,
                tx_mbps: rate(info.bytes_acked, acked0),
                rx_mbps: rate(info.bytes_received, recv0),
                mptcp: !c.is_fallback(),
                subflows: crate::cli::runner::subflow_summaries(c),
            });
            seen.push((id, (now, info.bytes_acked, info.bytes_received)));
        }
    });
    last.clear();
    last.extend(seen);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_have_every_field() {
        let st = ConnStats {
            t: 1.0,
            conn: "0.1".into(),
            acked: 1000,
            received: 2000,
            tx_mbps: 0.008,
            rx_mbps: 0.016,
            mptcp: true,
            subflows: vec![SubflowSummary {
                local: "198.18.1.2:40000".parse().unwrap(),
                remote: "198.18.1.1:5201".parse().unwrap(),
                bytes_sent: 1000,
                bytes_received: 2000,
                rtt: Duration::from_micros(2500),
                cwnd: 14600,
                retransmits: 1,
                state: "established",
            }],
        };
        assert_eq!(
            st.to_text(),
            "stats t=1.000s conn=0.1 acked=1000 received=2000 tx=0.0Mbit/s rx=0.0Mbit/s \
             mptcp=true subflows=1 sf0=198.18.1.2:40000->198.18.1.1:5201,sent=1000,\
             received=2000,rtt=2.5ms,cwnd=14600,retrans=1,state=established"
        );
        assert_eq!(
            st.to_json(),
            "{\"type\":\"stats\",\"t\":1.000,\"conn\":\"0.1\",\"acked\":1000,\"received\":2000,\
             \"tx_mbps\":0.008,\"rx_mbps\":0.016,\"mptcp\":true,\"subflows\":[{\"local\":\
             \"198.18.1.2:40000\",\"remote\":\"198.18.1.1:5201\",\"sent\":1000,\"received\":\
             2000,\"rtt\":2.500,\"cwnd\":14600,\"retrans\":1,\"state\":\"established\"}]}"
        );
    }
}
