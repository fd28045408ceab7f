# ltvpipe serve end to end: a server on a free 127.0.0.1 port answers every
# route; a prediction over HTTP is the object `ltvpipe predict` prints for the
# same user, one by one, in a JSON batch and in a CSV batch; hostile bodies
# (bad JSON, wrong type, too large, NaN, 1e999, invalid UTF-8, NUL bytes,
# format specifiers, deep nesting, 1 MB strings) get a 4xx JSON error naming
# the field; /ready is 503 before a model exists; alias moves need the token,
# follow `models promote`'s rules, and the server follows the alias.
set -u
. "$LTV_ROOT/tests/lib/serve.bash"
unset LTVPIPE_SERVE_TOKEN
S="--set tiers.tier1_min_users=100 --set tiers.tier1_min_payers=3 --set calibrate.min_users=50 --set select.min_validation_users=20"
"$LTVPIPE" generate --users 4000 --out data >/dev/null || exit 1
J='Content-Type: application/json'

# before any model: not ready, predictions 503, liveness fine
serve_start early --set registry.path=early/registry.sqlite --set serve.watch_ms=100 || exit 1
echo "no model: health $(http GET "$early_url/health"), ready $(http GET "$early_url/ready") $(err_of)"
echo "no model: predict $(http POST "$early_url/v1/predict" -H "$J" -d '{"app":"a"}') $(err_of)"
echo "no token configured: alias move $(http POST "$early_url/v1/aliases/production" -H "$J" -d '{"version":1}') $(err_of)"
serve_stop "$early_pid"

"$LTVPIPE" run $S >run.out 2>run.err || exit 1
"$LTVPIPE" run $S --set lookalike.k=12 >run2.out 2>run2.err || exit 1
"$LTVPIPE" serve --bind 0.0.0.0 --port 0 >bind.out 2>bind.err
echo "serve --bind 0.0.0.0 exit $?"
grep -q "not a loopback address" bind.err && echo "  refused: not a loopback address"
"$LTVPIPE" serve --help | grep -q "POST /v1/predict/batch" && echo "serve --help lists the routes"

export LTVPIPE_SERVE_TOKEN=s3cret-token
serve_start srv --set serve.watch_ms=100 --set serve.max_batch=100 --set serve.max_body_bytes=2000000 --threads 2 || exit 1
u=$srv_url
echo "health $(http GET "$u/health") $(jq -r .status body)"
echo "ready $(http GET "$u/ready") version $(jq -r .model_version body)"
echo "page $(http GET "$u/") $(grep -c '<form id="form">' body) form, $(grep -o 'https\?://[^"'"'"' ]*' body | grep -vcx 'http://www.w3.org/2000/svg') external URLs (the SVG namespace name is no URL fetched)"
echo "models $(http GET "$u/v1/models") versions $(jq -c '[.versions[].version]' body) aliases $(jq -c '[.versions[].aliases]' body)"
echo "model production $(http GET "$u/v1/models/production") version $(jq .version body) horizons $(jq -c .horizons body) methods $(jq -r '.methods | keys | join(",")' body)"
jq -e '[.methods[].campaigns] | add > 0' body >/dev/null && echo "  campaigns counted by method"
echo "model 2 $(http GET "$u/v1/models/2") version $(jq .version body)"
echo "model 9 $(http GET "$u/v1/models/9") $(err_of)"
echo "model x $(http GET "$u/v1/models/x%25n") $(err_of)"

# the same users through `ltvpipe predict`, /v1/predict, a JSON batch and a CSV batch
app=$(sed -n 2p data/users.csv | cut -d, -f2)
known=$(sed -n 2p data/users.csv | cut -d, -f3)
same=0
"$LTVPIPE" predict --app "$app" --campaign "$known" --feature rev_window=4.99 --feature age_days=3 \
	--feature purchases_window=1 --feature cost=1.5 >cli1.json
"$LTVPIPE" predict --app "$app" --campaign brand_new_campaign --feature events_window=12 >cli2.json
"$LTVPIPE" predict --app "$app" >cli3.json
u1="{\"app\":\"$app\",\"campaign\":\"$known\",\"rev_window\":4.99,\"age_days\":3,\"purchases_window\":1,\"cost\":1.5}"
u2="{\"app\":\"$app\",\"campaign\":\"brand_new_campaign\",\"events_window\":12}"
u3="{\"app\":\"$app\"}"
i=0
for user in "$u1" "$u2" "$u3"; do
	i=$((i + 1))
	status=$(http POST "$u/v1/predict" -H "$J" -d "$user")
	[ "$status" = 200 ] && cmp -s <(jq -S . body) <(jq -S . "cli$i.json") && same=$((same + 1))
done
echo "predict over HTTP = ltvpipe predict: $same of 3"
# an app the model never saw: the same warnings as `ltvpipe predict`
"$LTVPIPE" predict --app no_such_app --campaign "$known" >cli4.json 2>/dev/null
u4="{\"app\":\"no_such_app\",\"campaign\":\"$known\"}"
echo "unknown app $(http POST "$u/v1/predict" -H "$J" -d "$u4") = ltvpipe predict: $(cmp -s <(jq -S . body) <(jq -S . cli4.json) && echo yes || echo no), warnings $(jq '.warnings | length' body)"
echo "  in a JSON batch $(http POST "$u/v1/predict/batch" -H "$J" -d "[$u3,$u4]") warnings per user $(jq -c '[.predictions[] | .warnings | length]' body)"
echo "batch JSON $(http POST "$u/v1/predict/batch" -H "$J" -d "[$u1,$u2,$u3]") n=$(jq .n body) version $(jq .model_version body)"
same=0
for i in 1 2 3; do cmp -s <(jq -S ".predictions[$((i - 1))]" body) <(jq -S . "cli$i.json") && same=$((same + 1)); done
echo "  batch items = ltvpipe predict: $same of 3"
printf 'app,campaign,rev_window,age_days,purchases_window,cost,events_window\n%s,%s,4.99,3,1,1.5,\n%s,brand_new_campaign,,,,,12\n%s,,,,,,\n' \
	"$app" "$known" "$app" "$app" >batch.csv
echo "batch CSV $(http POST "$u/v1/predict/batch" -H 'Content-Type: text/csv' --data-binary @batch.csv) lines $(wc -l <body | tr -d ' ')"
head -1 body | tr -d '\r' | sed 's/^/  header /'
same=0
for i in 1 2 3; do
	row=$(sed -n "$((i + 1))p" body | tr -d '\r')
	jq -e --arg row "$row" '($row | split(",")) as $r | $r[4] == .method and ($r[8] | tonumber) == .ltv["7"]
		and ($r[9] | tonumber) == .ltv["30"] and ($r[10] | tonumber) == .ltv["90"]
		and ($r[12] | tonumber) == .ltv_raw["30"]' "cli$i.json" >/dev/null && same=$((same + 1))
done
echo "  CSV rows = ltvpipe predict: $same of 3"
grep -q '^X-Model-Version: 1' <(curl -s -D - -o /dev/null -H "$J" -d "$u3" "$u/v1/predict" | tr -d '\r') && echo "  header X-Model-Version: 1"

# errors: each a JSON error naming what is wrong
echo "unknown route $(http GET "$u/v2/nothing") $(err_of)"
echo "wrong method $(http GET "$u/v1/predict") $(err_of)"
echo "no content type $(http POST "$u/v1/predict" --data-binary "$u3" -H 'Content-Type:') $(err_of)"
echo "text/plain $(http POST "$u/v1/predict" -H 'Content-Type: text/plain' -d "$u3") $(err_of)"
echo "csv to /v1/predict $(http POST "$u/v1/predict" -H 'Content-Type: text/csv' -d "$u3") $(err_of)"
echo "bad JSON $(http POST "$u/v1/predict" -H "$J" -d '{"app": "a",') $(err_of)"
echo "empty body $(http POST "$u/v1/predict" -H "$J" --data-binary '') $(err_of)"
echo "two values $(http POST "$u/v1/predict" -H "$J" -d '{"app":"a"} {"app":"b"}') $(err_of)"
echo "not an object $(http POST "$u/v1/predict" -H "$J" -d '[1,2]') $(err_of)"
echo "NaN $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"rev_window\":NaN}") $(err_of)"
echo "1e999 $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"rev_window\":1e999}") $(err_of)"
echo "negative $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"cost\":-2}") $(err_of)"
echo "string number $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"age_days\":\"3\"}") $(err_of)"
echo "unknown field $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"ltv_30\":3}") $(err_of)"
echo "no app $(http POST "$u/v1/predict" -H "$J" -d '{"campaign":"c"}') $(err_of)"
echo "app not a string $(http POST "$u/v1/predict" -H "$J" -d '{"app":7}') $(err_of)"
printf '{"app":"\xff\xfe","rev_window":1}' >bad_utf8.json
echo "invalid UTF-8 $(http POST "$u/v1/predict" -H "$J" --data-binary @bad_utf8.json) $(err_of)"
printf '{"app":"a\xc0\xafb"}' >overlong.json
echo "overlong UTF-8 $(http POST "$u/v1/predict" -H "$J" --data-binary @overlong.json) $(err_of)"
printf '{"app":"a\0b"}' >nul.json
echo "NUL byte $(http POST "$u/v1/predict" -H "$J" --data-binary @nul.json) $(err_of)"
echo "escaped NUL $(http POST "$u/v1/predict" -H "$J" -d '{"app":"a\u0000b"}') $(err_of)"
echo "format specifiers in a field name $(http POST "$u/v1/predict" -H "$J" -d '{"app":"a","%s%n%x":1}') $(err_of)"
echo "format specifiers in app $(http POST "$u/v1/predict" -H "$J" -d '{"app":"%s%n%x%p","campaign":"%d%%"}') app $(jq -r .app body) campaign $(jq -r .campaign body) method $(jq -r .method body)"
printf '{"app":"%s"}' "$(head -c 1000000 /dev/zero | tr '\0' a)" >long.json
echo "1 MB app $(http POST "$u/v1/predict" -H "$J" --data-binary @long.json) $(err_of)"
printf '%0.s[' $(seq 1 40) >deep.json
echo "40 nested arrays $(http POST "$u/v1/predict" -H "$J" --data-binary @deep.json) $(err_of)"
head -c 2100000 /dev/zero | tr '\0' ' ' >big.json
echo "body over max_body_bytes $(http POST "$u/v1/predict" -H "$J" --data-binary @big.json) $(err_of)"
echo "install_time and age_days $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"install_time\":\"2025-01-01\",\"age_days\":3}") $(err_of)"
echo "bad install_time $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"install_time\":\"yesterday\"}") $(err_of)"
echo "install_time 3 days before as_of $(http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"install_time\":\"2025-03-01T10:00:00Z\",\"as_of\":\"2025-03-04T11:00:00Z\"}")"
# one request after the other: two process substitutions would run at once and
# the second request could rewrite `body` while the first is still read
jq -S 'del(.campaign)' body >by_install_time.json
http POST "$u/v1/predict" -H "$J" -d "{\"app\":\"$app\",\"age_days\":3}" >/dev/null
jq -S 'del(.campaign)' body | cmp -s - by_install_time.json && echo "  same as age_days 3"
echo "batch not an array $(http POST "$u/v1/predict/batch" -H "$J" -d "$u1") $(err_of)"
echo "empty batch $(http POST "$u/v1/predict/batch" -H "$J" -d '[]') $(err_of)"
echo "bad user in a batch $(http POST "$u/v1/predict/batch" -H "$J" -d "[$u1,{\"app\":\"$app\",\"rev_d0\":-1}]") $(err_of)"
big=$(for i in $(seq 1 101); do printf '%s{"app":"%s"}' "$([ "$i" = 1 ] || echo ,)" "$app"; done)
echo "101 users over max_batch 100 $(http POST "$u/v1/predict/batch" -H "$J" -d "[$big]") $(err_of)"
printf 'app,foo\na,1\n' >bad.csv
echo "CSV unknown column $(http POST "$u/v1/predict/batch" -H 'Content-Type: text/csv' --data-binary @bad.csv) $(err_of)"
printf 'app,rev_window\na,1,2\n' >bad.csv
echo "CSV ragged line $(http POST "$u/v1/predict/batch" -H 'Content-Type: text/csv' --data-binary @bad.csv) $(err_of)"
printf 'app,rev_window\na,lots\n' >bad.csv
echo "CSV not a number $(http POST "$u/v1/predict/batch" -H 'Content-Type: text/csv' --data-binary @bad.csv) $(err_of)"
printf 'app,rev_window\n"a,1\n' >bad.csv
echo "CSV open quote $(http POST "$u/v1/predict/batch" -H 'Content-Type: text/csv' --data-binary @bad.csv) $(err_of)"

# alias moves: the token, promote's rules, the history, and the server following the alias
echo "move without token $(http POST "$u/v1/aliases/production" -H "$J" -d '{"version":2}') $(err_of)"
echo "move with a wrong token $(http POST "$u/v1/aliases/production" -H "$J" -H 'Authorization: Bearer nope' -d '{"version":2}') $(err_of)"
A="Authorization: Bearer $LTVPIPE_SERVE_TOKEN"
echo "move to version 9 $(http POST "$u/v1/aliases/production" -H "$J" -H "$A" -d '{"version":9}') $(err_of)"
echo "move alias staging $(http POST "$u/v1/aliases/staging" -H "$J" -H "$A" -d '{"version":2}') $(err_of)"
echo "move version 1.5 $(http POST "$u/v1/aliases/production" -H "$J" -H "$A" -d '{"version":1.5}') $(err_of)"
echo "GET an alias $(http GET "$u/v1/aliases/production") $(err_of)"
echo "move to 1 (already) $(http POST "$u/v1/aliases/production" -H "$J" -H "$A" -d '{"version":1}') moved $(jq .moved body)"
echo "candidate before: $(sqlite3 models/registry.sqlite "select model_version from aliases where alias = 'candidate'")"
echo "move to 2 $(http POST "$u/v1/aliases/production" -H "$J" -H "$A" -d '{"version":2,"reason":"better WAPE"}') $(jq -c '[.from, .to, .moved, .candidate_unset]' body)"
echo "  as models promote: candidate unset: $(sqlite3 models/registry.sqlite "select count(*) = 0 from aliases where alias = 'candidate'")"
wait_until serving 2 "$u"
echo "  now serving version $(jq .model_version body)"
echo "  predict names version $(http POST "$u/v1/predict" -H "$J" -d "$u3" >/dev/null; jq .model_version body)"
echo "  ltvpipe models list: production is $("$LTVPIPE" models list | awk -F'\t' 'NR == 1 { for (c = 1; c <= NF; c++) if ($c == "aliases") a = c; next } $a ~ /production/ { print $1 }')"
echo "rollback $(http POST "$u/v1/aliases/production" -H "$J" -H "$A" -d '{"rollback":true}') $(jq -c '[.from, .to, .moved]' body)"
# the swap back to 1 is served before the next move, so /metrics counts three swaps
wait_until serving 1 "$u"
echo "history $(http GET "$u/v1/aliases/history") moves $(jq '.history | length' body)"
jq -r '.history[] | "  \(.alias) \(.from_version) -> \(.to_version): \(.reason)"' body
"$LTVPIPE" models promote 2 >/dev/null
wait_until serving 2 "$u"
echo "after ltvpipe models promote 2: serving version $(jq .model_version body)"

# metrics and the request log
http GET "$u/metrics" >/dev/null
grep -q '^ltvpipe_http_requests_total{route="predict",status="200"} [1-9]' body && echo "metrics: predict 200 counted"
grep -q '^ltvpipe_http_requests_total{route="predict",status="400"} [1-9]' body && echo "metrics: predict 400 counted"
grep -q '^ltvpipe_http_request_duration_seconds_bucket{route="predict",le="+Inf"} [1-9]' body && echo "metrics: latency histogram"
grep -q '^ltvpipe_predictions_total{method="[a-z_]*",model_version="1"} [1-9]' body && echo "metrics: predictions by method and version"
echo "metrics: $(grep '^ltvpipe_model_version ' body), swaps $(grep -c '^ltvpipe_model_swaps_total [3-9]' body)"
grep -q 'stage=serve POST /v1/predict 200 [0-9.]* ms model=1$' srv.err && echo "log: one line per request with status, latency and version"
kill -0 "$srv_pid" && echo "server still up after all of it"
exit 0
