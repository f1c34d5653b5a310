extension JSONParamsReader {
    /// The parameters of a method whose only parameter is an optional string `key` (a list
    /// filtered to one name or socket); any other or mistyped parameter is invalid.
    public static func optionalString(_ key: String, in params: JSONValue?) throws(ControlError) -> String? {
        let r = JSONParamsReader(params)
        let value = r.string(key)
        let problems = r.finish()
        guard problems.isEmpty else { throw .invalidParams(problems) }
        return value
    }

    /// The parameters of a delete: the required string `key` naming what goes (`example`
    /// shows one in the message when it is missing) and `force` (default false).
    public static func deletion(_ key: String, example: String, in params: JSONValue?) throws(ControlError) -> (String, force: Bool) {
        let r = JSONParamsReader(params)
        let value = r.requiredString(key, example: example)
        let force = r.bool("force") ?? false
        let problems = r.finish()
        guard problems.isEmpty, let value else { throw .invalidParams(problems) }
        return (value, force)
    }
}
