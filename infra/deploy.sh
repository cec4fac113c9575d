#!/usr/bin/env bash
# Deploys floe to AWS with the AWS CLI:
#   infra/deploy.sh STACK ARTIFACT_BUCKET [arm64|x86_64] [ParameterKey=Value ...]
# e.g. infra/deploy.sh floe my-artifacts arm64 SourceUrl=gs://ismip6/ISMIP6/AIS CommitterConcurrency=2
# Builds the zips (infra/build-artifacts.sh), uploads them under a content hash (so an update
# redeploys only changed code), deploys infra/floe.yaml, and writes ./floe.toml from the
# stack's outputs for `producer`. Needs: aws CLI v2 with credentials, an existing artifact bucket.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,8p "$0"; exit 2; }
STACK=$1 ARTIFACTS=$2 ARCH=${3:-arm64}
shift $(( $# >= 3 ? 3 : 2 ))
cd "$(dirname "$0")/.."
bash infra/build-artifacts.sh "$ARCH"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps --offline | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
declare -A KEYS
for fn in virtualizer committer producer; do
  sum=$(sha256sum "$TARGET_DIR/lambda/$ARCH/$fn.zip" | cut -c1-16)
  KEYS[$fn]="floe/$STACK/$fn-$ARCH-$sum.zip"
  aws s3 cp --only-show-errors "$TARGET_DIR/lambda/$ARCH/$fn.zip" "s3://$ARTIFACTS/${KEYS[$fn]}"
done
aws cloudformation deploy --stack-name "$STACK" --template-file infra/floe.yaml \
  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --tags cost-center=floe \
  --parameter-overrides ArtifactBucket="$ARTIFACTS" Architecture="$ARCH" \
    VirtualizerArtifactKey="${KEYS[virtualizer]}" CommitterArtifactKey="${KEYS[committer]}" \
    PlannerArtifactKey="${KEYS[producer]}" "$@"
cargo run -q --release -p floe-producer -- config --stack "$STACK" > floe.toml
echo "deployed $STACK; floe.toml written. Next: producer plan, producer enqueue --all, producer status --watch"
