mod simutil;
use simutil::*;
use mptun::time::Duration;
use mptun::mptcp::ConnConfig;
fn dump(p: &Pair, c: mptun::stack::ConnId, s: Option<mptun::stack::ConnId>) {
    for (name, st, id) in [("client", &p.client, Some(c)), ("server", &p.server, s)] {
        let Some(id) = id else { continue };
        let x = st.connection(id).unwrap();
        println!("{name} err {:?} info {:?}", x.error(), x.info());
        for s in x.subflows() { println!("  sf {} {:?} {:?} est {} closed {:?} sent {} join {:?} backup {} {}", s.id, s.tcb, s.tcb.stats(), s.established, s.closed, s.data_sent, s.join, s.backup, s.peer_backup); }
        println!("  mib {:?}", st.mib().iter().filter(|(_, v)| *v > 0).collect::<Vec<_>>());
    }
}
#[test]
fn dbg() {
    let sched = std::env::var("SCHED").unwrap_or("roundrobin".into());
    let imp = mptun::io::impair::Impairment { delay: Duration::from_millis(10), rate_bps: 50_000_000, queue_limit: 256*1024, ..Default::default() };
    let cfg = |s: &str| ConnConfig { path_manager: "manual".into(), scheduler: s.into(), ..ConnConfig::default() };
    let mut p = Pair::two_paths(23, imp.clone(), imp, cfg(&sched), cfg("minrtt"));
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(10), |p| p.client.connection(c).is_some_and(|x| x.is_established())));
    let id = p.open_second_path(c, false);
    assert!(p.wait_subflow(c, id));
    let mut t = Transfer::new(c, data(2 << 20, 5), data(1000, 6));
    let (mut f1, mut f2, mut f3, mut f4) = (false, false, false, false); let mut lastt = p.now();
    for _ in 0..5_000_000u64 {
        if p.client.connection(c).unwrap().error().is_some() || t.server.is_some_and(|s| p.server.connection(s).unwrap().error().is_some()) { println!("error at {:?}", p.now()); break; }
        t.pump(&mut p);
        if t.s_recv.len() == t.c_data.len() && !f1 { f1 = true; println!("server got all at {:?}", p.now()); }
        if t.c_eof && !f2 { f2 = true; println!("client eof at {:?}", p.now()); }
        if t.s_eof && !f3 { f3 = true; println!("server eof at {:?}", p.now()); }
        if f3 && p.now() != lastt { lastt = p.now(); let cs: Vec<_> = p.client.connection(c).unwrap().subflows().iter().map(|s| s.tcb.state()).collect(); let ss: Vec<_> = p.server.connection(t.server.unwrap()).unwrap().subflows().iter().map(|s| s.tcb.state()).collect(); println!("t {:?} c {:?} s {:?} ceof {} seof {}", p.now(), cs, ss, t.c_eof, t.s_eof); }
        if p.now() > mptun::time::Instant::from_millis(2000) && !f4 { f4 = true; dump(&p, c, t.server); println!("closed c {} s {}", p.client.connection(c).unwrap().is_closed(), p.server.connection(t.server.unwrap()).unwrap().is_closed()); }
        if t.done(&p) { println!("done at {:?}", p.now()); dump(&p, c, t.server); return; }
        if !p.step() { println!("nothing pending at {:?}", p.now()); break; }
    }
    dump(&p, c, t.server);
    panic!("c_recv {} s_recv {} c_sent {} s_sent {}", t.c_recv.len(), t.s_recv.len(), t.c_sent, t.s_sent);
}
