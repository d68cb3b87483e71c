//! Calldata from a function signature and its arguments as text, parsed by
//! type the way `cast send` parses them: `requestBalance(bytes) 0x1234`,
//! `request(uint256,address) 81 0x…`, `f(string,bool[]) "hi" "[true,false]"`.

use alloy::dyn_abi::{DynSolValue, JsonAbiExt, Specifier};
use alloy::json_abi::Function;

/// The calldata (selector and arguments) of `signature` called with `args`.
pub(crate) fn encode(signature: &str, args: &[String]) -> Result<Vec<u8>, String> {
    let function =
        Function::parse(signature).map_err(|err| format!("{signature:?} is not a function signature: {err}"))?;
    let signature = function.signature();
    if function.inputs.len() != args.len() {
        let wanted = match function.inputs.len() {
            1 => "1 argument".to_owned(),
            n => format!("{n} arguments"),
        };
        return Err(format!("{signature} takes {wanted}, got {}", args.len()));
    }
    let values = function
        .inputs
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (param, arg))| {
            let ty = param.resolve().map_err(|err| format!("argument {} of {signature}: {err}", i + 1))?;
            ty.coerce_str(arg).map_err(|err| format!("argument {} of {signature} ({ty}): {arg:?}: {err}", i + 1))
        })
        .collect::<Result<Vec<DynSolValue>, String>>()?;
    function.abi_encode_input(&values).map_err(|err| format!("{signature}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};
    use alloy::sol_types::SolCall;

    alloy::sol! {
        function requestBalance(bytes data);
        function request(uint256 n, address to, string note, bool[] flags);
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn arguments_are_parsed_by_type_and_encoded_as_the_compiler_would() {
        let encoded = encode("requestBalance(bytes)", &strings(&["0x1234"])).unwrap();
        assert_eq!(encoded, requestBalanceCall { data: vec![0x12, 0x34].into() }.abi_encode());

        let to = Address::repeat_byte(0xab);
        let args = strings(&["81", &to.to_string(), "hello", "[true,false]"]);
        // Spaces and parameter names are allowed, as in Solidity.
        let encoded = encode("request(uint256 n, address to, string note, bool[] flags)", &args).unwrap();
        let call = requestCall { n: U256::from(81), to, note: "hello".into(), flags: vec![true, false] };
        assert_eq!(encoded, call.abi_encode());
    }

    #[test]
    fn a_bad_signature_or_argument_is_refused_with_which_and_why() {
        let err = encode("requestBalance(bytes", &strings(&["0x12"])).unwrap_err();
        assert!(err.starts_with("\"requestBalance(bytes\" is not a function signature: "), "{err}");
        assert_eq!(encode("requestBalance(bytes)", &[]).unwrap_err(), "requestBalance(bytes) takes 1 argument, got 0");
        assert_eq!(
            encode("request(uint256,address)", &strings(&["1"])).unwrap_err(),
            "request(uint256,address) takes 2 arguments, got 1"
        );
        let err = encode("request(uint256,address)", &strings(&["-5", "0x00"])).unwrap_err();
        assert!(err.starts_with("argument 1 of request(uint256,address) (uint256): \"-5\": "), "{err}");
        let err = encode("request(uint256,address)", &strings(&["5", "0x00"])).unwrap_err();
        assert!(err.starts_with("argument 2 of request(uint256,address) (address): \"0x00\": "), "{err}");
    }
}
