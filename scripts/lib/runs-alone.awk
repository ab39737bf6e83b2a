# The suites and tests marked `.runsAlone(.PHASE)` (awk -v phase=PHASE), as a `swift test --filter`
# pattern a line: `\.Suite/` for the struct after an `@Suite(… .runsAlone(.PHASE) …)` and `/test\(`
# for the func after an `@Test(… .runsAlone(.PHASE) …)`. scripts/test joins them with `|`.
index($0, ".runsAlone(." phase ")") { want = ($0 ~ /@Suite/) ? "struct" : "func" }
want == "struct" && match($0, /struct [A-Za-z0-9_]+/) { print "\\." substr($0, RSTART + 7, RLENGTH - 7) "/"; want = "" }
want == "func" && match($0, /func [A-Za-z0-9_]+/) { print "/" substr($0, RSTART + 5, RLENGTH - 5) "\\("; want = "" }
