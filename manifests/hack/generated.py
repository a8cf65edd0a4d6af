"""The command line every generator under manifests/ shares: write the generated file, or with
--check say whether the committed one is current (tests run --check)."""
import sys


def write_or_check(out, text, argv, usage):
    """Returns the exit status: 0 written or current, 1 out of date (--check), 2 bad usage."""
    if argv[1:] == ["--check"]:
        with open(out) as f:
            if f.read() != text:
                print("%s is out of date: run %s" % (out, argv[0]), file=sys.stderr)
                return 1
        return 0
    if argv[1:]:
        print(usage, file=sys.stderr)
        return 2
    with open(out, "w") as f:
        f.write(text)
    return 0
