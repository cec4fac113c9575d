# Source this to point the AWS SDKs and floe at the local LocalStack.
export AWS_ENDPOINT_URL=http://127.0.0.1:${LS_PORT:-4566}
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
