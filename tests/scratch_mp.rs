mod simutil;
use simutil::*;
use mptun::time::Duration;
use mptun::mptcp::ConnConfig;
fn dump(p: &Pair, c: mptun::stack::ConnId, s: Option<mptun::stack::ConnId>) {
    for (name, st, id) in [("client", &p.client, Some(c)), ("server", &p.server, s)] {
        let Some(id) = id else { continue };
        let x = st.connection(id).unwrap();
        println!("{name} err {:?} info {:?}", x.error(), x.info());
        for s in x.subflows() { println!("  sf {} {:?} {:?} est {} closed {:?} sent {} join {:?} pf {} rx {:?}", s.id, s.tcb, s.tcb.stats(), s.established, s.closed, s.data_sent, s.join, s.potentially_failed, s.rx_maps.iter().take(5).collect::<Vec<_>>()); }
        println!("  mib {:?}", st.mib().iter().filter(|(_, v)| *v > 0).collect::<Vec<_>>());
    }
}
#[test]
fn dbg() {
    let imp = mptun::io::impair::Impairment { delay: Duration::from_millis(10), rate_bps: 50_000_000, queue_limit: 256*1024, ..Default::default() };
    let cfg = |s: &str| ConnConfig { path_manager: "manual".into(), scheduler: s.into(), ..ConnConfig::default() };
    let mut p = Pair::two_paths(25, imp.clone(), imp, cfg("minrtt"), cfg("minrtt"));
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(10), |p| p.client.connection(c).is_some_and(|x| x.is_established())));
    let id = p.open_second_path(c, true);
    assert!(p.wait_subflow(c, id));
    let mut t = Transfer::new(c, data(1 << 20, 9), data(1000, 10));
    assert!(p.run_until(Duration::from_secs(60), |p| { t.pump(p); t.s_recv.len() > 512 << 10 }));
    p.net.set_link_up(0, false);
    println!("link down at {:?}", p.now());
    let mut last = p.now();
    for _ in 0..5_000_000u64 {
        if p.client.connection(c).unwrap().error().is_some() { println!("error at {:?}", p.now()); break; }
        t.pump(&mut p);
        if p.now() >= last + Duration::from_secs(5) { last = p.now(); println!("t {:?} c_recv {} s_recv {}", p.now(), t.c_recv.len(), t.s_recv.len()); }
        if t.done(&p) { println!("done at {:?}", p.now()); return; }
        if !p.step() { println!("nothing pending at {:?}", p.now()); break; }
    }
    dump(&p, c, t.server);
    panic!("c_recv {} s_recv {} c_sent {} s_sent {}", t.c_recv.len(), t.s_recv.len(), t.c_sent, t.s_sent);
}
