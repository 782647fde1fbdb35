fn main() {
    let dir = "../shared/corpus/official-images/library";
    let files: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    for _ in 0..60 {
        let t = std::time::Instant::now();
        let mut n = 0;
        for f in &files {
            n += keg::manifest::parse::paragraphs(std::str::from_utf8(f).unwrap()).len();
        }
        println!("pest only: {:?} {n}", t.elapsed());
        let t = std::time::Instant::now();
        for f in &files {
            n += keg::manifest::parse("x", f).unwrap().manifest.entries.len();
        }
        println!("full: {:?} {n}", t.elapsed());
    }
}
