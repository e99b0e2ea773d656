"""Shared set-up of the compiler tests. pytest puts this folder on sys.path when it loads this
file, so tests in sub-folders (lowering/, passes/) import `compiler_testing` as well."""
