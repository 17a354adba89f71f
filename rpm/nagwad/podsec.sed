# nagwad filter of podsec-inotify, installed as /etc/nagwad/podsec.sed.
#
# Input: journal or syslog lines `<date> <host> <tag>[<pid>]: <Level>: <text>` (journalctl's
# short formats, rsyslog files), where <tag> is the podsec command that logged the line.
# Output: `<tag>:<STATE>:<tag>(<Level>) <text>`; <tag> is the nagwad filter name that
# `check_nagwad <tag>` asks for.
#   podsec-inotify-check-*:           Crash Fatal Critical High Middle -> CRITICAL, Warning -> WARNING
#   podsec-inotify-build-*:           Crash Fatal Critical High Middle -> CRITICAL
#   everything else (Low, Debug, other programs, lines without a level): nothing.
# `[^[]*` before the tag: the first `name[pid]:` of the line is the one that counts, so a
# message of another program that merely quotes a podsec line does not match.
# Works with and without `sed -n` (matches are printed once, everything else is deleted).
s/^[^[]*[[:space:]]\(podsec-inotify-check-[a-z][a-z-]*\)\[[0-9][0-9]*\]:[[:space:]]\(Crash\|Fatal\|Critical\|High\|Middle\):[[:space:]]\(.*\)$/\1:CRITICAL:\1(\2) \3/
t found
s/^[^[]*[[:space:]]\(podsec-inotify-check-[a-z][a-z-]*\)\[[0-9][0-9]*\]:[[:space:]]\(Warning\):[[:space:]]\(.*\)$/\1:WARNING:\1(\2) \3/
t found
s/^[^[]*[[:space:]]\(podsec-inotify-build-[a-z][a-z-]*\)\[[0-9][0-9]*\]:[[:space:]]\(Crash\|Fatal\|Critical\|High\|Middle\):[[:space:]]\(.*\)$/\1:CRITICAL:\1(\2) \3/
t found
d
:found
p
d
