# Imported by the boot-failure test: the import itself fails.
import this_module_does_not_exist  # noqa: F401
