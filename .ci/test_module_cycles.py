"""Self-test for module-cycles.py: builds small fake crates in a temp dir.

Run: python3 .ci/test_module_cycles.py   (or python3 -m unittest .ci/test_module_cycles.py)
"""
import contextlib
import importlib.util
import io
import os
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("module_cycles", os.path.join(HERE, "module-cycles.py"))
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)


class ModuleCycles(unittest.TestCase):
    def crate(self, files):
        """Write {relative path: source} under a temp dir; return src/lib.rs."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for rel, text in files.items():
            path = os.path.join(tmp.name, "src", rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(textwrap.dedent(text))
        return os.path.join(tmp.name, "src", "lib.rs")

    def run_main(self, *args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = mc.main(list(args))
        return status, out.getvalue()

    def cycles(self, files):
        """Every SCC, at every level, as sorted lists of module names."""
        levels = mc.Crate(self.crate(files)).lifted_edges()
        return sorted(sorted(map(mc.name, comp)) for edges in levels.values()
                      for comp in mc.sccs(edges))

    def test_clean_tree(self):
        root = self.crate({
            "lib.rs": "pub mod a;\npub mod b;\nmod c;\n",
            "a.rs": "use crate::b::Thing;\npub fn f() -> Thing { crate::c::make() }\n",
            "b.rs": "pub struct Thing;\n",
            "c.rs": "pub fn make() -> crate::b::Thing { crate::b::Thing }\n",
        })
        status, out = self.run_main(root, "--graph")
        self.assertEqual(status, 0)
        self.assertEqual(out.splitlines(), [
            f"module-cycles: {root}: 4 modules, no cycles",
            "a -> b", "a -> c", "c -> b",
        ])

    def test_two_module_cycle_via_use(self):
        root = self.crate({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": "\n\nuse crate::a::A;\npub struct B;\n",
        })
        status, out = self.run_main(root)
        self.assertEqual(status, 1)
        self.assertIn("    a -> b -> a\n", out)
        self.assertIn(f"a -> b  {os.path.join(os.path.dirname(root), 'a.rs')}:1", out)
        self.assertIn(f"b -> a  {os.path.join(os.path.dirname(root), 'b.rs')}:3", out)

    def test_cycle_via_grouped_multiline_use(self):
        self.assertEqual(self.cycles({
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::{\n    c::C,\n    b::{\n        inner::Y,\n        Z,\n    },\n};\n",
            "b/mod.rs": "pub mod inner;\npub struct Z;\n",
            "b/inner.rs": "use crate::a::*;\npub struct Y;\n",
            "c.rs": "pub struct C;\n",
        }), [["a", "b"]])

    def test_child_using_super_is_no_cycle(self):
        self.assertEqual(self.cycles({
            "lib.rs": "mod store;\n",
            "store/mod.rs": "mod records;\nuse self::records::Rec;\npub struct Db(Rec);\n",
            "store/records.rs": "use super::Db;\npub struct Rec;\nfn f(_: super::super::store::Db) {}\n",
        }), [])

    def test_cousins_make_a_top_level_cycle(self):
        root = self.crate({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "mod x;\n",       # non-mod.rs: its children live in a/
            "a/x.rs": "fn f() { crate::b::y::g() }\n",
            "b/mod.rs": "pub mod y;\nmod z;\n",
            "b/y.rs": "pub fn g() {}\n",
            "b/z.rs": "use crate::a as top_a;\n",
        })
        status, out = self.run_main(root, "--graph")
        self.assertEqual(status, 1)
        self.assertIn("  under crate: a, b\n    a -> b -> a\n", out)
        self.assertIn(os.path.join("a", "x.rs") + ":1", out)
        self.assertIn(os.path.join("b", "z.rs") + ":1", out)
        self.assertTrue(out.endswith("a -> b\nb -> a\n"))

    def test_nested_level_cycle(self):
        self.assertEqual(self.cycles({
            "lib.rs": "mod net;\n",
            "net/mod.rs": "mod p;\nmod q;\n",
            "net/p.rs": "use super::q::Q;\npub struct P;\n",
            "net/q.rs": "use crate::net::p::P;\npub struct Q;\n",
        }), [["net::p", "net::q"]])

    def test_comments_and_strings_are_ignored(self):
        self.assertEqual(self.cycles({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": textwrap.dedent('''\
                //! Unlike [`crate::a`], this module ...
                /// see crate::a::A
                // use crate::a::A;
                /* outer /* nested crate::a */ still crate::a::A */
                const S: &str = "crate::a::A";
                const R: &str = r#"crate::a::A "quoted" "#;
                const C: char = '"'; const D: char = '\\'';
                fn f<'x>(s: &'x str) -> &'x str { s }
                pub struct B;
            '''),
        }), [])

    def test_cfg_test_modules_are_ignored(self):
        root = self.crate({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\n#[cfg(test)]\nmod tests;\n",
            "a/tests.rs": "use crate::b::*;\nmod more;\n",
            "a/tests/more.rs": "pub struct M;\n",
            "b.rs": "pub struct B;\n#[cfg(test)]\n#[allow(unused)]\npub mod tests {\n"
                    "    use crate::a::*;\n    mod inner { fn f() { crate::a::g() } }\n}\n"
                    "fn after() -> B { B }\n",
        })
        crate = mc.Crate(root)
        self.assertEqual(sorted(crate.nodes), [(), ("a",), ("b",)])
        self.assertEqual(self.run_main(root)[0], 0)

    def test_inline_modules_and_path_attribute(self):
        self.assertEqual(self.cycles({
            "lib.rs": "mod a;\n#[path = \"other/bee.rs\"]\nmod b;\n",
            "a.rs": "pub mod codes {\n    pub use super::super::b::helper::H;\n}\n",
            "other/bee.rs": "pub mod helper;\n",   # #[path] files own their directory
            "other/helper.rs": "pub struct H;\nfn f() { crate::a::codes::x() }\n",
        }), [["a", "b"]])


if __name__ == "__main__":
    unittest.main()
