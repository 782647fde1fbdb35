fn main() {
    std::process::exit(keg::main());
}
