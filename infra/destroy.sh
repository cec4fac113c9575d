#!/usr/bin/env bash
# Deletes a floe stack: infra/destroy.sh STACK
# The data bucket (the store and fragments) is retained on purpose (DeletionPolicy: Retain):
# empty and delete it yourself once the store is no longer needed.
set -euo pipefail
[ $# -eq 1 ] || { sed -n 2,4p "$0"; exit 2; }
STACK=$1
bucket=$(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='StoreUrl'].OutputValue" --output text | cut -d/ -f3)
aws cloudformation delete-stack --stack-name "$STACK"
aws cloudformation wait stack-delete-complete --stack-name "$STACK"
echo "deleted $STACK; retained bucket $bucket (aws s3 rb s3://$bucket --force to delete the store)"
