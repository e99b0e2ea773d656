"""symgrad's compiler: model -> IR -> reverse-mode IR -> simplified IR -> LLVM -> native code;
standalone export; explain.

The compiler depends on `runtime`, never the other way round. Importing this package stays light:
submodules that need llvmlite or jinja2 import them themselves, on first use.
"""
