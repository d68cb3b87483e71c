//! The `mem-touch` guest binary: see the library docs for its input and
//! output. The output word lives on the stack, so the only heap pages
//! touched are the `pages` the library writes. Malformed input or too many
//! pages panic (exit code 101).
#![no_std]
#![no_main]

coprocessor_sdk::entry!(main);

fn main() {
    let result = mem_touch::parse_input(coprocessor_sdk::onchain_input()).and_then(mem_touch::touch_pages);
    match result {
        Ok(pages) => coprocessor_sdk::commit(&coprocessor_sdk::abi::u64_word(pages)),
        Err(e) => panic!("mem-touch: {e}"),
    }
}
