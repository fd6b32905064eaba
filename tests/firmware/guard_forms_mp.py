# Run by test_guard_forms.py under MicroPython: the table's keys come on stdin, the answers go out as JSON.
import json
import sys

from guard_table import decide

print(json.dumps(decide(json.loads(sys.stdin.read()))))
