//! The line format `haven kv txn` reads, as etcdctl's interactive txn:
//! three sections — compares, then the operations run on success, then
//! those run on failure — separated by one blank line each.
//!
//! ```text
//! mod("config") > "0"
//! val("owner") = "alice"
//!
//! put owner "bob"
//! del lock
//!
//! get owner
//! ```
//!
//! Compares: `TARGET("KEY") OP OPERAND` with TARGET one of `val`/`value`,
//! `ver`/`version`, `create`, `mod`, `lease` and OP one of `=`, `!=`, `<`,
//! `>`. Operations: `get KEY [--prefix]`, `put KEY VALUE [--lease ID]`,
//! `del KEY [--prefix]`. Strings may be double-quoted with `\"`, `\\`,
//! `\n`, `\t` and `\xHH` escapes; `#` starts a comment line.
//!
//! In: that text. Out: a [`TxnRequest`], or an error naming the line.

use crate::cli::display::parse_lease_id;
use crate::kv::{DeleteRangeRequest, PutRequest, RangeRequest, prefix_end};
use crate::txn::{Compare, CompareResult, CompareTarget, RequestOp, TxnRequest};

/// A txn text is small; refuse anything that is clearly not one.
pub const TXN_TEXT_BYTES_MAX: usize = 1 << 20;
const SECTION_NAMES: [&str; 3] = ["compares", "success operations", "failure operations"];

pub fn parse_txn(text: &str) -> Result<TxnRequest, String> {
    if text.len() > TXN_TEXT_BYTES_MAX {
        return Err(format!("the txn text is over {TXN_TEXT_BYTES_MAX} bytes"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.iter().rposition(|line| !line.trim().is_empty()).map_or(0, |at| at + 1);
    let mut txn = TxnRequest::default();
    let mut section = 0;
    for (index, line) in lines[..last].iter().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            section += 1;
            if section == SECTION_NAMES.len() {
                return Err(format!(
                    "line {number}: a txn has three sections (compares, success, failure) separated by single blank lines"
                ));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let parsed = match section {
            0 => parse_compare(line).map(|compare| txn.compare.push(compare)),
            1 => parse_op(line).map(|op| txn.success.push(op)),
            _ => parse_op(line).map(|op| txn.failure.push(op)),
        };
        parsed.map_err(|reason| format!("line {number} ({}): {reason}", SECTION_NAMES[section]))?;
    }
    Ok(txn)
}

fn parse_compare(line: &str) -> Result<Compare, String> {
    let usage = "write a compare as TARGET(\"KEY\") OP OPERAND, e.g. mod(\"k\") > \"0\" or val(\"k\") = \"v\"";
    let mut lexer = Lexer::new(line);
    let target = lexer.word_until(|c| c == '(').ok_or(usage)?;
    lexer.expect('(').map_err(|_| usage)?;
    let key = lexer.token(|c| c == ')')?.ok_or(usage)?;
    lexer.expect(')').map_err(|_| usage)?;
    let op = lexer.token(|_| false)?.ok_or(usage)?;
    let operand = lexer.token(|_| false)?.ok_or(usage)?;
    lexer.end()?;
    let result = match op.as_slice() {
        b"=" | b"==" => CompareResult::Equal,
        b"!=" => CompareResult::NotEqual,
        b"<" => CompareResult::Less,
        b">" => CompareResult::Greater,
        other => return Err(format!("unknown operator `{}`: use =, !=, < or >", String::from_utf8_lossy(other))),
    };
    let number = || -> Result<i64, String> {
        let text = String::from_utf8_lossy(&operand);
        text.parse().map_err(|_| format!("`{text}` is not an integer, which `{target}` compares with"))
    };
    let target = match target.as_str() {
        "val" | "value" => CompareTarget::Value(operand.clone()),
        "ver" | "version" => CompareTarget::Version(number()?),
        "create" => CompareTarget::CreateRevision(number()?),
        "mod" => CompareTarget::ModRevision(number()?),
        "lease" => CompareTarget::Lease(parse_lease_id(&String::from_utf8_lossy(&operand))?),
        other => return Err(format!("unknown compare target `{other}`: use val, ver, create, mod or lease")),
    };
    Ok(Compare { key, range_end: Vec::new(), result, target })
}

fn parse_op(line: &str) -> Result<RequestOp, String> {
    let mut lexer = Lexer::new(line);
    let mut words = Vec::new();
    while let Some(word) = lexer.token(|_| false)? {
        words.push(word);
    }
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let (verb, args) = words.split_first().ok_or("an empty operation")?;
    let has_prefix = args.len() == 2 && args[1] == b"--prefix";
    let range_end = |key: &[u8]| if has_prefix { prefix_end(key) } else { Vec::new() };
    match (verb.as_slice(), args) {
        (b"get", [key]) | (b"get", [key, _]) if args.len() == 1 || has_prefix => Ok(RequestOp::Range(RangeRequest {
            key: key.clone(),
            range_end: range_end(key),
            ..RangeRequest::default()
        })),
        (b"del", [key]) | (b"del", [key, _]) if args.len() == 1 || has_prefix => {
            Ok(RequestOp::DeleteRange(DeleteRangeRequest {
                key: key.clone(),
                range_end: range_end(key),
                prev_kv: false,
            }))
        }
        (b"put", [key, value]) => {
            Ok(RequestOp::Put(PutRequest { key: key.clone(), value: value.clone(), ..PutRequest::default() }))
        }
        (b"put", [key, value, flag, id]) if flag == b"--lease" => Ok(RequestOp::Put(PutRequest {
            key: key.clone(),
            value: value.clone(),
            lease: parse_lease_id(&text(id))?,
            prev_kv: false,
        })),
        (b"get" | b"del" | b"put", _) => Err(format!(
            "wrong arguments for `{}`: use `get KEY [--prefix]`, `put KEY VALUE [--lease ID]` or `del KEY [--prefix]`",
            text(verb)
        )),
        _ => Err(format!("unknown operation `{}`: use get, put or del", text(verb))),
    }
}

/// Reads words and quoted strings of one line.
struct Lexer<'a> {
    rest: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Lexer<'a> {
    fn new(line: &'a str) -> Self {
        Lexer { rest: line.chars().peekable() }
    }

    fn skip_spaces(&mut self) {
        while self.rest.next_if(|c| c.is_whitespace()).is_some() {}
    }

    fn word_until(&mut self, stop: impl Fn(char) -> bool) -> Option<String> {
        self.skip_spaces();
        let mut word = String::new();
        while let Some(c) = self.rest.next_if(|&c| !stop(c) && !c.is_whitespace()) {
            word.push(c);
        }
        (!word.is_empty()).then_some(word)
    }

    fn expect(&mut self, wanted: char) -> Result<(), ()> {
        self.skip_spaces();
        self.rest.next_if_eq(&wanted).map(|_| ()).ok_or(())
    }

    /// A quoted string or a bare word (ending at a space or at `stop`).
    fn token(&mut self, stop: impl Fn(char) -> bool) -> Result<Option<Vec<u8>>, String> {
        self.skip_spaces();
        if self.rest.next_if_eq(&'"').is_none() {
            return Ok(self.word_until(stop).map(String::into_bytes));
        }
        let mut bytes = Vec::new();
        loop {
            match self.rest.next().ok_or("a string without its closing quote")? {
                '"' => return Ok(Some(bytes)),
                '\\' => self.escape(&mut bytes)?,
                c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }

    fn escape(&mut self, bytes: &mut Vec<u8>) -> Result<(), String> {
        match self.rest.next().ok_or("a string ending in a lone backslash")? {
            '"' => bytes.push(b'"'),
            '\\' => bytes.push(b'\\'),
            'n' => bytes.push(b'\n'),
            't' => bytes.push(b'\t'),
            'x' => {
                let digits: String = [self.rest.next(), self.rest.next()].into_iter().flatten().collect();
                let byte = u8::from_str_radix(&digits, 16).map_err(|_| format!("`\\x{digits}` is not a hex byte"))?;
                bytes.push(byte);
            }
            other => return Err(format!("unknown escape `\\{other}`: use \\\", \\\\, \\n, \\t or \\xHH")),
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), String> {
        self.skip_spaces();
        match self.rest.peek() {
            None => Ok(()),
            Some(_) => Err(format!("unexpected `{}` at the end", self.rest.clone().collect::<String>())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_sections() {
        let text = "mod(\"config\") > \"0\"\nval(\"owner\") = \"alice\"\n\nput owner \"bob smith\"\ndel lock --prefix\n\n# read it back\nget owner\n\n";
        let txn = parse_txn(text).unwrap();
        assert_eq!(txn.compare.len(), 2);
        assert_eq!(txn.compare[0].target, CompareTarget::ModRevision(0));
        assert_eq!(txn.compare[0].result, CompareResult::Greater);
        assert_eq!(txn.compare[1].target, CompareTarget::Value(b"alice".to_vec()));
        assert_eq!(
            txn.success[0],
            RequestOp::Put(PutRequest { key: b"owner".to_vec(), value: b"bob smith".to_vec(), ..Default::default() })
        );
        assert_eq!(
            txn.success[1],
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: b"lock".to_vec(),
                range_end: b"locl".to_vec(),
                prev_kv: false
            })
        );
        assert_eq!(txn.failure, vec![RequestOp::Range(RangeRequest { key: b"owner".to_vec(), ..Default::default() })]);
    }

    #[test]
    fn reads_every_target_operator_and_escape() {
        let compare = |line: &str| parse_compare(line).unwrap();
        assert_eq!(compare("ver(k) != 3").target, CompareTarget::Version(3));
        assert_eq!(compare("create( \"k\" ) < 5").result, CompareResult::Less);
        assert_eq!(compare("lease(\"k\") = 2a").target, CompareTarget::Lease(42));
        assert_eq!(compare("value(\"a\\\"b\") = \"\\x00\\n\"").key, b"a\"b".to_vec());
        assert_eq!(compare("value(\"a\") = \"\\x00\\n\"").target, CompareTarget::Value(vec![0, b'\n']));
        let put = parse_op("put k v --lease ff").unwrap();
        assert_eq!(
            put,
            RequestOp::Put(PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), lease: 255, prev_kv: false })
        );
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let error = |text: &str| parse_txn(text).unwrap_err();
        assert!(error("mod(\"k\") ~ 1").contains("line 1 (compares): unknown operator `~`"));
        assert!(error("\nput k").contains("line 2 (success operations): wrong arguments for `put`"));
        assert!(error("\n\nfrob k").contains("line 3 (failure operations): unknown operation `frob`"));
        assert!(error("\n\n\nget k").contains("three sections"));
        assert!(error("mod(k) > x").contains("not an integer"));
        assert!(error("val(\"k) = 1").contains("closing quote"));
        assert!(error("val(k) = 1 2").contains("unexpected `2`"));
        assert!(error("size(k) = 1").contains("unknown compare target"));
    }

    #[test]
    fn an_empty_text_is_an_empty_txn() {
        assert_eq!(parse_txn("\n\n").unwrap(), TxnRequest::default());
    }
}
