mod simutil;
use simutil::*;
use mptun::time::Duration;
#[test]
fn debug_small() {
    let mut p = Pair::new(1, mptun::io::impair::Impairment { delay: Duration::from_millis(10), ..Default::default() });
    let c = p.connect();
    let mut t = Transfer::new(c, data(100_000, 1), data(70_000, 2));
    let mut last = p.now();
    let mut same = 0;
    for _ in 0..200000 {
        t.pump(&mut p);
        if t.done(&p) { println!("done at {:?}", p.now()); return; }
        if !p.step() { println!("nothing pending"); break; }
        if p.now() == last { same += 1; } else { same = 0; last = p.now(); }
        if same > 1000 {
            let cc = p.client.connection(c).unwrap();
            println!("stuck at {:?}: client timeout {:?} server timeout {:?}", p.now(), p.client.poll_timeout(), p.server.poll_timeout());
            println!("client {:?}", cc.subflows()[0].tcb);
            if let Some(s) = t.server { println!("server {:?}", p.server.connection(s).unwrap().subflows()[0].tcb); }
            println!("{:?}", cc);
            break;
        }
    }
    panic!("not done: c_recv {} s_recv {}", t.c_recv.len(), t.s_recv.len());
}
