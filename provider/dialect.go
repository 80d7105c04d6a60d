package provider

import "strings"

// A dialect is one provider's schema language: a column of keywordTable
// below. OpenAI strict and Gemini parameters have a
// fallback dialect used when a schema cannot be expressed in them.
type dialect int

const (
	dOpenAIStrict dialect = iota // OpenAI strict mode (Chat and Responses)
	dOpenAI                      // OpenAI non-strict
	dMistral                     // Mistral: OpenAI non-strict, refs inlined
	dAnthropic                   // Anthropic non-strict
	dGeminiParams                // Gemini FunctionDeclaration.parameters (OpenAPI subset)
	dGeminiJSON                  // Gemini FunctionDeclaration.parametersJsonSchema
	dMCP                         // MCP inputSchema / outputSchema
	numDialects
)

var dialectNames = [numDialects]string{
	dOpenAIStrict: "OpenAI strict mode",
	dOpenAI:       "OpenAI (non-strict)",
	dMistral:      "Mistral",
	dAnthropic:    "Anthropic",
	dGeminiParams: "Gemini (parameters)",
	dGeminiJSON:   "Gemini (parametersJsonSchema)",
	dMCP:          "MCP",
}

func (d dialect) String() string { return dialectNames[d] }

// fallback is the dialect tried when d cannot express a schema.
func (d dialect) fallback() (dialect, bool) {
	switch d {
	case dOpenAIStrict:
		return dOpenAI, true
	case dGeminiParams:
		return dGeminiJSON, true
	}
	return 0, false
}

// action is what a dialect does with a keyword that has no structural rule.
type action uint8

const (
	keep       action = iota // pass it through
	strip                    // remove: annotation or metadata (Stripped)
	describe                 // remove and note in the description (Described)
	drop                     // remove: validation the provider lacks (Dropped)
	downgrade                // cannot be expressed: use the fallback dialect
	structural               // handled by code in convert.go, not by this table
)

// The keyword table: one row per JSON Schema keyword, one column per
// dialect, in the order OAI-S, OAI, MIS, ANT, GEM-P, GEM-J, MCP. It is
// the rules of the package documentation (doc.go) made executable; keep the
// two in step.
// Keywords not listed here (x-* extensions and unknown keywords) are kept
// for MCP and stripped everywhere else.
var keywordTable = map[string][numDialects]action{
	//                        OAI-S      OAI       MIS       ANT       GEM-P      GEM-J     MCP
	"$schema":        {strip, strip, strip, strip, strip, strip, keep},
	"$id":            {strip, strip, strip, strip, strip, keep, keep},
	"$anchor":        {strip, strip, strip, strip, strip, keep, keep},
	"$dynamicAnchor": {strip, strip, strip, strip, strip, strip, keep},
	"$vocabulary":    {strip, strip, strip, strip, strip, strip, keep},
	"$comment":       {strip, strip, strip, strip, strip, strip, keep},
	"$dynamicRef":    {downgrade, keep, keep, keep, downgrade, drop, keep},

	"title":      {keep, keep, keep, keep, keep, keep, keep},
	"default":    {describe, keep, keep, keep, keep, keep, keep},
	"deprecated": {strip, keep, keep, keep, strip, strip, keep},
	"readOnly":   {strip, keep, keep, keep, strip, strip, keep},
	"writeOnly":  {strip, keep, keep, keep, strip, strip, keep},

	"multipleOf":       {keep, keep, keep, keep, describe, describe, keep},
	"maximum":          {keep, keep, keep, keep, keep, keep, keep},
	"minimum":          {keep, keep, keep, keep, keep, keep, keep},
	"exclusiveMaximum": {keep, keep, keep, keep, describe, describe, keep},
	"exclusiveMinimum": {keep, keep, keep, keep, describe, describe, keep},
	"maxLength":        {describe, keep, keep, keep, keep, describe, keep},
	"minLength":        {describe, keep, keep, keep, keep, describe, keep},
	"pattern":          {keep, keep, keep, keep, keep, describe, keep},
	"maxItems":         {keep, keep, keep, keep, keep, keep, keep},
	"minItems":         {keep, keep, keep, keep, keep, keep, keep},
	"uniqueItems":      {describe, keep, keep, keep, describe, describe, keep},
	"maxContains":      {describe, keep, keep, keep, describe, describe, keep},
	"minContains":      {describe, keep, keep, keep, describe, describe, keep},
	"maxProperties":    {describe, keep, keep, keep, keep, describe, keep},
	"minProperties":    {describe, keep, keep, keep, keep, describe, keep},
	"contentEncoding":  {describe, keep, keep, keep, describe, describe, keep},
	"contentMediaType": {describe, keep, keep, keep, describe, describe, keep},

	"contains":              {drop, keep, keep, keep, drop, drop, keep},
	"contentSchema":         {drop, keep, keep, keep, drop, drop, keep},
	"dependentRequired":     {drop, drop, drop, keep, drop, drop, keep},
	"dependentSchemas":      {drop, drop, drop, keep, drop, drop, keep},
	"not":                   {drop, drop, drop, keep, drop, drop, keep},
	"if":                    {drop, drop, drop, keep, drop, drop, keep},
	"then":                  {drop, drop, drop, keep, drop, drop, keep},
	"else":                  {drop, drop, drop, keep, drop, drop, keep},
	"unevaluatedItems":      {drop, keep, keep, keep, drop, drop, keep},
	"unevaluatedProperties": {drop, keep, keep, keep, drop, drop, keep},
	"propertyNames":         {drop, keep, keep, keep, drop, drop, keep},
	"prefixItems":           {downgrade, keep, keep, keep, downgrade, keep, keep},
	"patternProperties":     {downgrade, keep, keep, keep, downgrade, drop, keep},

	// Gemini's own OpenAPI-subset keywords: not JSON Schema, meaningful only
	// to Gemini parameters (propertyOrdering also to parametersJsonSchema).
	"nullable":         {strip, strip, strip, strip, keep, strip, keep},
	"example":          {strip, strip, strip, strip, keep, strip, keep},
	"propertyOrdering": {strip, strip, strip, strip, keep, keep, keep},

	// Keywords with rules in convert.go.
	"$ref":                 {structural, structural, structural, structural, structural, structural, structural},
	"$defs":                {structural, structural, structural, structural, structural, structural, structural},
	"definitions":          {structural, structural, structural, structural, structural, structural, structural},
	"allOf":                {structural, structural, structural, structural, structural, structural, structural},
	"anyOf":                {structural, structural, structural, structural, structural, structural, structural},
	"oneOf":                {structural, structural, structural, structural, structural, structural, structural},
	"type":                 {structural, structural, structural, structural, structural, structural, structural},
	"enum":                 {structural, structural, structural, structural, structural, structural, structural},
	"const":                {structural, structural, structural, structural, structural, structural, structural},
	"properties":           {structural, structural, structural, structural, structural, structural, structural},
	"required":             {structural, structural, structural, structural, structural, structural, structural},
	"additionalProperties": {structural, structural, structural, structural, structural, structural, structural},
	"items":                {structural, structural, structural, structural, structural, structural, structural},
	"description":          {structural, structural, structural, structural, structural, structural, structural},
	"format":               {structural, structural, structural, structural, structural, structural, structural},
	"examples":             {strip, keep, keep, keep, structural, strip, keep},
}

func (d dialect) action(keyword string) action {
	if row, ok := keywordTable[keyword]; ok {
		return row[d]
	}
	if d == dMCP {
		return keep
	}
	return strip
}

// keywordReason explains, for a Change, why d does what it does to keyword.
func (d dialect) keywordReason(keyword string, a action) string {
	_, known := keywordTable[keyword]
	switch a {
	case strip:
		switch {
		case strings.HasPrefix(keyword, "x-"):
			return d.String() + " gets no extension keywords"
		case !known:
			return "not a JSON Schema 2020-12 keyword " + d.String() + " takes"
		case strings.HasPrefix(keyword, "$"):
			return d.String() + " does not take " + keyword
		}
		return "annotation " + d.String() + " does not take"
	case describe:
		return d.String() + " does not support " + keyword + "; noted in the description, enforced locally"
	case drop:
		return d.String() + " does not support " + keyword + "; enforced locally"
	case downgrade:
		return d.String() + " cannot express " + keyword
	}
	return ""
}

// refMode says how a dialect treats $ref.
type refMode uint8

const (
	refKeep          refMode = iota // keep every reference (Anthropic, OpenAI non-strict, MCP)
	refInlineSibling                // inline a $ref that has sibling keywords (OpenAI strict)
	refInlineAcyclic                // inline every non-recursive $ref (Mistral)
	refInlineAll                    // inline everything, unroll recursion to a depth (Gemini parameters)
	refGeminiJSON                   // keep; inline when siblings other than description/default (Gemini JSON)
)

var dialectRefs = [numDialects]refMode{
	dOpenAIStrict: refInlineSibling,
	dOpenAI:       refKeep,
	dMistral:      refInlineAcyclic,
	dAnthropic:    refKeep,
	dGeminiParams: refInlineAll,
	dGeminiJSON:   refGeminiJSON,
	dMCP:          refKeep,
}

// allOfMode says what a dialect does with allOf.
type allOfMode uint8

const (
	allOfKeep             allOfMode = iota // Anthropic, MCP
	allOfMergeOrKeep                       // OpenAI non-strict, Mistral: merge when possible (safer), else keep as a hint
	allOfMergeOrDowngrade                  // OpenAI strict
	allOfMergeOrDrop                       // Gemini
)

var dialectAllOf = [numDialects]allOfMode{
	dOpenAIStrict: allOfMergeOrDowngrade,
	dOpenAI:       allOfMergeOrKeep,
	dMistral:      allOfMergeOrKeep,
	dAnthropic:    allOfKeep,
	dGeminiParams: allOfMergeOrDrop,
	dGeminiJSON:   allOfMergeOrDrop,
	dMCP:          allOfKeep,
}

// oneOfToAnyOf: the dialect lacks oneOf (or treats it as anyOf anyway).
func (d dialect) oneOfToAnyOf() bool {
	return d != dAnthropic && d != dMCP
}

// rootComposition lists the keywords a dialect rejects at the root, even
// outside strict mode (the OpenAI, Anthropic and Gemini pages of Sources in
// doc.go).
func (d dialect) rootComposition() []string {
	switch d {
	case dOpenAIStrict, dOpenAI, dMistral:
		return []string{"anyOf", "oneOf", "allOf", "enum", "const", "not"}
	case dAnthropic, dGeminiParams, dGeminiJSON:
		return []string{"anyOf", "oneOf", "allOf"}
	}
	return nil
}

// formats lists the format values a dialect takes; nil means all.
func (d dialect) formats() map[string]bool {
	switch d {
	case dOpenAIStrict:
		return openAIStrictFormats
	case dGeminiParams:
		return geminiFormats
	}
	return nil
}

var openAIStrictFormats = map[string]bool{
	"date-time": true, "time": true, "date": true, "duration": true, "email": true,
	"hostname": true, "ipv4": true, "ipv6": true, "uuid": true,
}

var geminiFormats = map[string]bool{"enum": true, "date-time": true}

// Limits, in one place (OpenAI's structured outputs and Gemini's
// FunctionDeclaration pages, listed under Sources in doc.go). They change:
// check the providers' pages before raising them.
const (
	// OpenAI strict mode.
	openAIMaxProperties     = 5000    // object properties in one schema
	openAIMaxDepth          = 10      // nesting levels (arrays count, to fail closed)
	openAIMaxStringLength   = 120_000 // property + definition names, enum and const values
	openAIMaxEnumValues     = 1000    // across all enums
	openAILargeEnum         = 250     // a string enum with more values than this ...
	openAILargeEnumMaxChars = 15_000  // ... may total at most this many characters
	// OpenAI Chat Completions rejects longer function descriptions (observed).
	openAIChatMaxDescription = 1024

	// Gemini parameters cannot express recursion: a recursive $ref is
	// unrolled this many times on one path, and omitted below that.
	geminiUnrollDepth = 3

	// A bound on schema objects visited in one conversion, so that a hostile
	// schema whose references fan out cannot blow up inlining.
	maxSchemaNodes = 50_000
	// A bound on the values that inlining references copies in one
	// conversion: a large target used many times would otherwise turn a
	// small schema into a huge tool list.
	maxInlinedValues = 500_000
)
