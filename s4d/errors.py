"""S3 errors: one exception type and the one table of S3 error codes.

Everything below the HTTP layer raises :class:`S3Error` with a code from
:data:`ERROR_STATUS`; the S3 layer renders it as AWS's XML error document.
Nothing else decides HTTP status codes for errors.
"""

from __future__ import annotations

from typing import Any

#: AWS error code -> (HTTP status, default message).
ERROR_STATUS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AccessForbidden": (403, "CORSResponse: This CORS request is not allowed."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BadRequest": (400, "Bad Request"),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    # s4d's own (RenameObject of a prefix onto keys that exist; docs/s3.rst)
    "DestinationAlreadyExists": (409, "The rename destination already exists."),
    "ConditionalRequestConflict": (
        409,
        "A conflicting operation occurred. If using PutObject you can retry the request.",
    ),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "IdempotencyParameterMismatch": (
        400,
        "Parameters on this idempotent request are inconsistent with parameters used in "
        "previous request(s).",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS access key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidBucketState": (409, "The request is not valid with the current state of the bucket."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidLocationConstraint": (400, "The specified location constraint is not valid."),
    "InvalidObjectState": (403, "The operation is not valid for the current state of the object."),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    "MaxPostPreDataLengthExceededError": (
        400,
        "Your POST request fields preceding the upload file were too large.",
    ),
    "InvalidPart": (400, "One or more of the specified parts could not be found."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidStorageClass": (400, "The storage class you specified is not valid."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "MalformedPolicy": (400, "Policies must be valid JSON and the first byte must be '{'"),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published "
        "schema.",
    ),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request is missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist."),
    "NoSuchTagSet": (404, "The TagSet does not exist."),
    "NoSuchUpload": (
        404,
        "The specified multipart upload does not exist. The upload ID might not be valid, "
        "or the multipart upload might have been aborted or completed.",
    ),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "NoSuchWebsiteConfiguration": (404, "The bucket does not have a website configuration."),
    "NoSuchPublicAccessBlockConfiguration": (404, "No public access block configuration."),
    "ObjectLockConfigurationNotFoundError": (404, "Object Lock configuration does not exist."),
    "NoSuchObjectLockConfiguration": (
        404,
        "The specified object does not have a ObjectLock configuration",
    ),
    "InvalidRetentionPeriod": (400, "Default retention period must be a positive integer value."),
    "OwnershipControlsNotFoundError": (404, "The bucket ownership controls were not found."),
    "ReplicationConfigurationNotFoundError": (404, "The replication configuration was not found."),
    "ServerSideEncryptionConfigurationNotFoundError": (
        404,
        "The server side encryption configuration was not found.",
    ),
    "NotImplemented": (
        501,
        "A header or query you provided implies functionality that is not implemented.",
    ),
    "PolicyTooLarge": (400, "Policy exceeds the maximum allowed document size."),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold."),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the current time is too large.",
    ),
    "RequestHeaderSectionTooLarge": (
        400,
        "Your request header section exceeds the maximum allowed size.",
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    ),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    "InvalidChunkSizeError": (
        403,
        "Only the last chunk is allowed to have a size less than 8192 bytes",
    ),
    "InvalidEncryptionAlgorithmError": (400, "The encryption request you specified is not valid."),
    "MissingRequestBodyError": (400, "Request Body is empty."),
    "UnexpectedContent": (400, "This request does not support content."),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "NotModified": (304, "Not Modified"),
    "StorageFull": (507, "Insufficient storage space is available to complete the request."),
    # access control (ACLs, ownership controls)
    "AccessControlListNotSupported": (400, "The bucket does not allow ACLs"),
    "MalformedACLError": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    ),
    "UnresolvableGrantByEmailAddress": (
        400,
        "The e-mail address you provided does not match any account on record.",
    ),
    "InvalidBucketAclWithObjectOwnership": (
        400,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
    ),
}


#: SelectObjectContent's codes (AWS's list of SELECT Object Content errors), and the two
#: of s4d's queries (QueryTimeout, QueryMemoryExceeded: S4_SELECT_TIMEOUT, _MAX_MEMORY).
SELECT_ERRORS: dict[str, tuple[int, str]] = {
    "AmbiguousFieldName": (400, "The field name matches more than one field in the record."),
    "CastFailed": (400, "Attempt to convert from one data type to another using CAST failed."),
    "CSVParsingError": (400, "Encountered an error parsing the CSV file."),
    "DivisionByZero": (400, "Division by zero."),
    "EmptyRequestBody": (400, "The request body cannot be empty."),
    "EvaluatorBindingDoesNotExist": (400, "A column name or a path does not exist."),
    "EvaluatorInvalidArguments": (400, "Incorrect number of arguments in the function call."),
    "EvaluatorInvalidTimestampFormatPattern": (400, "The timestamp format pattern is invalid."),
    "ExpressionTooLong": (400, "The SQL expression is too long: the maximum is 256 KB."),
    "IncorrectSqlFunctionArgumentType": (400, "Incorrect type of arguments in function call."),
    "IntegerOverflow": (400, "Integer overflow or underflow in the SQL expression."),
    "InvalidCast": (400, "Attempt to convert from one data type to another using CAST."),
    "InvalidColumnIndex": (400, "The column index is invalid."),
    "InvalidCompressionFormat": (400, "The file is not in a supported compression format."),
    "InvalidDataType": (400, "The SQL expression contains an invalid data type."),
    "InvalidExpressionType": (400, "The ExpressionType is invalid: only SQL is supported."),
    "InvalidFileHeaderInfo": (400, "The FileHeaderInfo is invalid: USE, IGNORE or NONE."),
    "InvalidJsonType": (400, "The JsonType is invalid: DOCUMENT or LINES."),
    "InvalidQuoteFields": (400, "The QuoteFields is invalid: ALWAYS or ASNEEDED."),
    "InvalidRequestParameter": (400, "The value of a parameter in the request is invalid."),
    "InvalidScanRange": (400, "The ScanRange is invalid."),
    "InvalidTableAlias": (400, "The SQL expression contains an invalid table alias."),
    "InvalidTextEncoding": (400, "Invalid encoding type: only UTF-8 is supported."),
    "JSONParsingError": (400, "Encountered an error parsing the JSON file."),
    "LexerInvalidChar": (400, "The SQL expression contains an invalid character."),
    "LikeInvalidInputs": (400, "Invalid argument given to the LIKE clause in the SQL expression."),
    "LexerInvalidLiteral": (400, "The SQL expression contains an invalid literal."),
    "MissingRequiredParameter": (400, "The request is missing a required parameter."),
    "MultipleDataSourcesUnsupported": (400, "Multiple data sources are not supported."),
    "ObjectSerializationConflict": (400, "InputSerialization names more than one format."),
    "OverMaxRecordSize": (400, "The length of a record exceeds the maximum."),
    "ParquetParsingError": (400, "Encountered an error parsing the Parquet file."),
    "ParseCastArity": (400, "The SQL expression CAST has incorrect arity."),
    "ParseEmptySelect": (400, "The SQL expression contains an empty SELECT."),
    "ParseExpectedDatePart": (400, "Did not find the expected date part."),
    "ParseExpectedExpression": (400, "Did not find the expected SQL expression."),
    "ParseExpectedLeftParenAfterCast": (400, "Did not find the expected left parenthesis."),
    "ParseExpectedRightParenBuiltinFunctionCall": (
        400,
        "Did not find the expected right parenthesis character in the SQL expression.",
    ),
    "ParseInvalidPathComponent": (400, "The SQL expression contains an invalid path component."),
    "ParseSelectMissingFrom": (400, "The SQL expression contains a missing FROM after SELECT."),
    "ParseUnexpectedToken": (400, "The SQL expression contains an unexpected token."),
    "ParseUnsupportedSelect": (400, "The SQL expression contains an unsupported use of SELECT."),
    "QueryMemoryExceeded": (400, "The query needs more memory than this server allows."),
    "QueryTimeout": (400, "The query ran longer than this server allows."),
    "UnsupportedFunction": (400, "Encountered an unsupported SQL function."),
    "UnsupportedScanRangeInput": (400, "Scan range queries are not supported on this input."),
    "UnsupportedSqlOperation": (400, "Encountered an unsupported SQL operation."),
    "UnsupportedSyntax": (400, "Encountered invalid syntax."),
}
ERROR_STATUS.update(SELECT_ERRORS)


class S3Error(Exception):
    """An error that maps to one S3 error response.

    :param code: the AWS error code, a key of :data:`ERROR_STATUS`.
    :param message: overrides the table's default message.
    :param extra: additional elements rendered into the XML error body
        (for example ``StringToSign`` for ``SignatureDoesNotMatch``).

    :attr:`headers` are sent with the error response (for example
    ``x-amz-delete-marker`` when a read finds a delete marker).
    """

    def __init__(self, code: str, message: str | None = None, **extra: Any) -> None:
        status, default = ERROR_STATUS.get(code, (500, code))
        self.code = code
        self.status = status
        self.message = message or default
        self.extra = extra
        self.headers: dict[str, str] = {}
        super().__init__(f"{code}: {self.message}")

    def __repr__(self) -> str:
        return f"S3Error({self.code!r}, {self.message!r})"
