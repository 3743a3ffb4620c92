mod simutil;
use simutil::*;
use mptun::time::Duration;
#[test]
fn debug_lossy() {
    let imp = mptun::io::impair::Impairment { delay: Duration::from_millis(10), jitter: Duration::from_millis(2), loss: 0.02, reorder: 0.02, rate_bps: 200_000_000, queue_limit: 4<<20, ..Default::default() };
    let mut p = Pair::new(42, imp);
    let c = p.connect();
    let mut t = Transfer::new(c, data(10<<20, 1), data(10<<20, 2));
    for _ in 0..50_000_000u64 {
        t.pump(&mut p);
        if t.done(&p) { println!("done at {:?}", p.now()); return; }
        if !p.step() { println!("nothing pending at {:?}", p.now()); break; }
    }
    let cc = p.client.connection(c).unwrap();
    println!("client timeout {:?} server timeout {:?}", p.client.poll_timeout(), p.server.poll_timeout());
    println!("client {:?} {:?} err {:?} info {:?}", cc.subflows()[0].tcb, cc.subflows()[0].tcb.stats(), cc.error(), cc.info());
    if let Some(s) = t.server { let sc = p.server.connection(s).unwrap(); println!("server {:?} {:?} err {:?} info {:?}", sc.subflows()[0].tcb, sc.subflows()[0].tcb.stats(), sc.error(), sc.info()); }
    println!("mib c {:?}", p.client.mib().iter().filter(|(_, v)| *v > 0).collect::<Vec<_>>());
    println!("mib s {:?}", p.server.mib().iter().filter(|(_, v)| *v > 0).collect::<Vec<_>>());
    panic!("not done: c_recv {} s_recv {} c_sent {} s_sent {}", t.c_recv.len(), t.s_recv.len(), t.c_sent, t.s_sent);
}
